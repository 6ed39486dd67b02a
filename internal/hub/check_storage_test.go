package hub_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws/credentials"
	v4 "github.com/aws/aws-sdk-go/aws/signer/v4"
	"github.com/opencontainers/go-digest"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	skregistry "github.com/skiffhq/skiff/internal/registry"
)

// s3Object sends a signed request on one object of the bucket (key
// under the bucket) and fails the test unless it succeeds.
func s3Object(t *testing.T, b hubtest.S3Bucket, method, key string, body []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.Endpoint+"/"+b.Bucket+"/"+key, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v4.NewSigner(credentials.NewStaticCredentials(b.AccessKey, b.SecretKey, "")).Sign(req, bytes.NewReader(body), "s3", b.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, key, resp.Status, msg)
	}
}

// TestCheckStorage: hub check reads content through the storage driver,
// so it checks a hub on the filesystem and one in a bucket of a real S3
// server (hack/s3.sh) alike. Each hub checks clean with an approved
// package; with one of the package's blobs deleted and another
// overwritten with other bytes, directly in the storage, check reports
// both, naming the package.
func TestCheckStorage(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	type damage struct {
		del     func(d digest.Digest)
		corrupt func(d digest.Digest)
	}
	for _, tc := range []struct {
		name string
		// storage returns the storage of a hub with root root and the
		// ways to damage a blob in it.
		storage func(t *testing.T, root string) (skregistry.Storage, damage)
	}{
		{"filesystem", func(t *testing.T, root string) (skregistry.Storage, damage) {
			data := func(d digest.Digest) string {
				return filepath.Join(root, "storage", "docker", "registry", "v2", "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data")
			}
			return skregistry.Storage{}, damage{
				del: func(d digest.Digest) {
					if err := os.Remove(data(d)); err != nil {
						t.Fatal(err)
					}
				},
				corrupt: func(d digest.Digest) {
					if err := os.WriteFile(data(d), []byte("not the blob"), 0o644); err != nil {
						t.Fatal(err)
					}
				},
			}
		}},
		{"s3", func(t *testing.T, root string) (skregistry.Storage, damage) {
			b := hubtest.S3(t)
			rnd := make([]byte, 6)
			rand.Read(rnd)
			prefix := "check-" + hex.EncodeToString(rnd) // the bucket may be shared
			key := func(d digest.Digest) string {
				return prefix + "/docker/registry/v2/blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded() + "/data"
			}
			return skregistry.Storage{S3: &skregistry.S3Storage{
					Endpoint: b.Endpoint, Region: b.Region, Bucket: b.Bucket, AccessKey: b.AccessKey, SecretKey: b.SecretKey,
					RootDirectory: "/" + prefix, ForcePathStyle: true, Insecure: strings.HasPrefix(b.Endpoint, "http://"),
				}}, damage{
					del:     func(d digest.Digest) { s3Object(t, b, http.MethodDelete, key(d), nil) },
					corrupt: func(d digest.Digest) { s3Object(t, b, http.MethodPut, key(d), []byte("not the blob")) },
				}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			root := t.TempDir()
			storage, dmg := tc.storage(t, root)
			key, trustDir := hubtest.TrustedKey(t)
			h, err := hub.New(ctx, hub.Options{Root: root, TrustDir: trustDir, Storage: storage})
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
			client := func(user string) *hubclient.Client { return hubtest.Login(t, host, user, password) }
			archive := hubtest.Archive(t, t.TempDir(), "shop", "1.2.0", 42, key)
			if _, err := client("alice").Push(ctx, archive, "acme", hubclient.PushOptions{}); err != nil {
				t.Fatalf("push: %v", err)
			}
			if p, err := client("bob").Approve(ctx, "acme", "shop", "1.2.0", "ok"); err != nil || p.Status != hub.StatusApproved {
				t.Fatalf("approve: %v %v", p, err)
			}

			o := hub.CheckOptions{Root: root, Storage: storage}
			rep, err := hub.Check(ctx, o)
			if err != nil || !rep.OK || rep.Packages != 1 || rep.Blobs < 3 {
				t.Fatalf("check of a sound hub: %+v %v", rep, err)
			}

			// Damage two blobs other than the root, directly in the storage.
			p, err := st.Package(ctx, "acme", "shop", "1.2.0")
			if err != nil {
				t.Fatal(err)
			}
			var digests []string
			if err := st.Tx(ctx, func(tx *hub.StoreTx) (err error) {
				digests, err = tx.PackageDigests(ctx, p.ID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var victims []digest.Digest
			for _, d := range digests {
				if d != p.Digest && len(victims) < 2 {
					victims = append(victims, digest.Digest(d))
				}
			}
			if len(victims) != 2 {
				t.Fatalf("want two blobs besides the root, the package has %q", digests)
			}
			dmg.del(victims[0])
			dmg.corrupt(victims[1])

			rep, err = hub.Check(ctx, o)
			if !errors.Is(err, hub.ErrInconsistent) || rep == nil || rep.OK {
				t.Fatalf("check of a damaged hub: %+v %v, want ErrInconsistent", rep, err)
			}
			want := []string{
				"acme/shop:1.2.0: blob " + victims[0].String() + ": missing from storage",
				"acme/shop:1.2.0: blob " + victims[1].String() + ": the stored blob is corrupt: its content has sha256 " + digest.FromString("not the blob").Encoded(),
			}
			for _, w := range want {
				found := false
				for _, got := range rep.Problems {
					found = found || got == w
				}
				if !found {
					t.Errorf("problems %q, want %q among them", rep.Problems, w)
				}
			}
			if len(rep.Problems) != len(want) {
				t.Errorf("problems %q, want only %q", rep.Problems, want)
			}

			// Checked with other storage than the hub serves with: refused.
			other := skregistry.Storage{}
			if storage.S3 == nil {
				s3 := skregistry.S3Storage{Bucket: "elsewhere", Endpoint: "http://127.0.0.1:1"}
				other.S3 = &s3
			}
			if _, err := hub.Check(ctx, hub.CheckOptions{Root: root, Storage: other}); err == nil || !strings.Contains(err.Error(), "pass") {
				t.Errorf("check with the wrong storage: %v, want refused", err)
			}
		})
	}
}
