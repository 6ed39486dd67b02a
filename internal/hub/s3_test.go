package hub_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	skregistry "github.com/skiffhq/skiff/internal/registry"
)

// TestS3Storage runs a hub whose content lives in an S3 bucket (gofakes3,
// in memory, on 127.0.0.1): a package pushed, approved and pulled comes
// back byte-identical, its content is in the bucket and not under the
// root, and backup and check refuse the hub.
func TestS3Storage(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	mem := s3mem.New()
	if err := mem.CreateBucket("skiff-hub"); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(s3srv.Close)

	key, trustDir := hubtest.TrustedKey(t)
	root := t.TempDir()
	h, err := hub.New(ctx, hub.Options{Root: root, TrustDir: trustDir, Storage: skregistry.Storage{S3: &skregistry.S3Storage{
		Endpoint: s3srv.URL, Region: "us-east-1", Bucket: "skiff-hub", AccessKey: "test", SecretKey: "test-secret",
		RootDirectory: "/hub", ForcePathStyle: true, Insecure: true,
	}}})
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	host := hubtest.Serve(t, h)
	st := h.Store()
	for _, u := range []string{"alice", "bob"} {
		if err := st.AddUser(ctx, u, password, false); err != nil {
			t.Fatal(err)
		}
	}
	st.Grant(ctx, "acme", "alice", hub.LevelWrite)
	st.Grant(ctx, "acme", "bob", hub.LevelAdmin)
	client := func(user string) *hubclient.Client {
		anon, _ := hubclient.New(host, hubclient.Options{})
		tok, err := anon.Login(ctx, user, password, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := hubclient.New(host, hubclient.Options{Username: user, Token: tok.Secret})
		return c
	}

	dir := t.TempDir()
	archive := hubtest.Archive(t, dir, "shop", "1.2.0", 42, key)
	res, err := client("alice").Push(ctx, archive, "acme", hubclient.PushOptions{})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if res.Package.Status != hub.StatusPending {
		t.Fatalf("pushed: %s %+v", res.Package.Status, res.Package.Gates)
	}
	if p, err := client("bob").Approve(ctx, "acme", "shop", "1.2.0", "ok"); err != nil || p.Status != hub.StatusApproved {
		t.Fatalf("approve: %v %v", p, err)
	}
	out := filepath.Join(dir, "pulled.skiff")
	if _, err := client("bob").Pull(ctx, "acme", "shop", "1.2.0", out, hubclient.PullOptions{}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	want, _ := os.ReadFile(archive)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Fatalf("pulled %d bytes differ from the %d pushed", len(got), len(want))
	}

	list, err := mem.ListBucket("skiff-hub", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	blobs := 0
	for _, o := range list.Contents {
		if strings.HasPrefix(o.Key, "hub/docker/registry/v2/blobs/") {
			blobs++
		}
	}
	if blobs == 0 {
		t.Errorf("no blobs in the bucket: %d objects", len(list.Contents))
	}
	if _, err := os.Stat(filepath.Join(root, "storage")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the S3 hub wrote %s/storage: %v", root, err)
	}
	if _, err := hub.Check(ctx, hub.CheckOptions{Root: root}); !errors.Is(err, hub.ErrNotFilesystem) {
		t.Errorf("check of an S3 hub: %v, want ErrNotFilesystem", err)
	}
	if _, err := hub.Backup(ctx, &bytes.Buffer{}, hub.BackupOptions{Root: root}); !errors.Is(err, hub.ErrNotFilesystem) {
		t.Errorf("backup of an S3 hub: %v, want ErrNotFilesystem", err)
	}
}
