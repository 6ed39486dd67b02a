package hub_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws/credentials"
	v4 "github.com/aws/aws-sdk-go/aws/signer/v4"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	skregistry "github.com/skiffhq/skiff/internal/registry"
)

// s3Do sends an S3 request to the bucket's server, signed (AWS
// signature V4) with key and secret unless key is "", and returns the
// status and body.
func s3Do(t *testing.T, b hubtest.S3Bucket, method, path string, query url.Values, key, secret string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.Endpoint+path+"?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		if _, err := v4.NewSigner(credentials.NewStaticCredentials(key, secret, "")).Sign(req, nil, "s3", b.Region, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// s3Keys lists the keys of the bucket under prefix, with the test's
// credentials.
func s3Keys(t *testing.T, b hubtest.S3Bucket, prefix string) []string {
	t.Helper()
	var keys []string
	q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
	for {
		status, body := s3Do(t, b, http.MethodGet, "/"+b.Bucket, q, b.AccessKey, b.SecretKey)
		if status != http.StatusOK {
			t.Fatalf("listing %s/%s: %d %s", b.Bucket, prefix, status, body)
		}
		var page struct {
			Contents []struct{ Key string }
			Next     string `xml:"NextContinuationToken"`
		}
		if err := xml.Unmarshal(body, &page); err != nil {
			t.Fatalf("listing %s/%s: %v: %s", b.Bucket, prefix, err, body)
		}
		for _, c := range page.Contents {
			keys = append(keys, c.Key)
		}
		if page.Next == "" {
			return keys
		}
		q.Set("continuation-token", page.Next)
	}
}

func countKeys(keys []string, part string) int {
	n := 0
	for _, k := range keys {
		if strings.Contains(k, part) {
			n++
		}
	}
	return n
}

// TestS3SignaturesChecked: the S3 server of the tests refuses anonymous
// and wrongly signed requests, so what TestS3Storage stores there was
// sent with the hub's credentials, really checked.
func TestS3SignaturesChecked(t *testing.T) {
	b := hubtest.S3(t)
	list := url.Values{"list-type": {"2"}}
	for name, c := range map[string]struct{ key, secret string }{
		"anonymous":    {"", ""},
		"wrong secret": {b.AccessKey, b.SecretKey + "x"},
		"unknown key":  {"AKIANOBODY", b.SecretKey},
	} {
		for _, r := range []struct {
			method, path string
			query        url.Values
		}{
			{http.MethodGet, "/" + b.Bucket, list},
			{http.MethodPut, "/" + b.Bucket + "/refused", nil},
		} {
			if status, body := s3Do(t, b, r.method, r.path, r.query, c.key, c.secret); status != http.StatusForbidden {
				t.Errorf("%s: %s %s: %d, want 403: %s", name, r.method, r.path, status, body)
			}
		}
	}
	if status, body := s3Do(t, b, http.MethodGet, "/"+b.Bucket, list, b.AccessKey, b.SecretKey); status != http.StatusOK {
		t.Errorf("signed with the test's key: %d, want 200: %s", status, body)
	}
}

// s3Clock is a settable time source for the hub.
type s3Clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *s3Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *s3Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestS3Storage runs a hub whose content lives in a bucket of a real S3
// server (hack/s3.sh: SeaweedFS, which checks signatures): a package
// pushed and approved is pulled back byte-identical and exported; its
// content is in the bucket and not under the root; removed, it can no
// longer be pulled, its tag is gone from the bucket and the version can
// be pushed again; housekeeping purges an unfinished upload from the
// bucket once stale; backup and check refuse the hub.
func TestS3Storage(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	b := hubtest.S3(t)
	ctx := t.Context()
	// Each run under its own prefix: the bucket may be shared.
	rnd := make([]byte, 6)
	rand.Read(rnd)
	prefix := "hub-" + hex.EncodeToString(rnd)
	repo := prefix + "/docker/registry/v2/repositories/acme/shop/"

	key, trustDir := hubtest.TrustedKey(t)
	root := t.TempDir()
	clock := &s3Clock{t: time.Now()}
	h, err := hub.New(ctx, hub.Options{Root: root, TrustDir: trustDir, Now: clock.Now, UploadPurgeAge: time.Hour,
		Storage: skregistry.Storage{S3: &skregistry.S3Storage{
			Endpoint: b.Endpoint, Region: b.Region, Bucket: b.Bucket, AccessKey: b.AccessKey, SecretKey: b.SecretKey,
			RootDirectory: "/" + prefix, ForcePathStyle: true, Insecure: strings.HasPrefix(b.Endpoint, "http://"),
		}}})
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	host := hubtest.Serve(t, h)
	st := h.Store()
	for _, u := range []string{"alice", "bob", "root"} {
		if err := st.AddUser(ctx, u, password, u == "root"); err != nil {
			t.Fatal(err)
		}
	}
	st.Grant(ctx, "acme", "alice", hub.LevelWrite)
	st.Grant(ctx, "acme", "bob", hub.LevelAdmin)
	client := func(user string) *hubclient.Client { return hubtest.Login(t, host, user, password) }
	alice, bob := client("alice"), client("bob")

	// Push, approve, pull.
	dir := t.TempDir()
	archive := hubtest.Archive(t, dir, "shop", "1.2.0", 42, key)
	res, err := alice.Push(ctx, archive, "acme", hubclient.PushOptions{})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if res.Package.Status != hub.StatusPending {
		t.Fatalf("pushed: %s %+v", res.Package.Status, res.Package.Gates)
	}
	if p, err := bob.Approve(ctx, "acme", "shop", "1.2.0", "ok"); err != nil || p.Status != hub.StatusApproved {
		t.Fatalf("approve: %v %v", p, err)
	}
	out := filepath.Join(dir, "pulled.skiff")
	if _, err := bob.Pull(ctx, "acme", "shop", "1.2.0", out, hubclient.PullOptions{}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	want, _ := os.ReadFile(archive)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Fatalf("pulled %d bytes differ from the %d pushed", len(got), len(want))
	}
	// An export reads every blob of the package back from the bucket
	// (ReadExport checks each one's sha256).
	var exp bytes.Buffer
	if _, err := h.Export(ctx, &exp, hub.ExportOptions{Actor: "root"}); err != nil {
		t.Fatalf("export: %v", err)
	}
	exported := 0
	m, err := hub.ReadExport(&exp, nil, func(hub.ExportBlob, io.Reader) error { exported++; return nil })
	if err != nil || len(m.Packages) != 1 || exported == 0 {
		t.Fatalf("reading the export: %v, %d blobs: %v", m, exported, err)
	}
	keys := s3Keys(t, b, prefix+"/")
	if n := countKeys(keys, prefix+"/docker/registry/v2/blobs/"); n == 0 {
		t.Errorf("no blobs in the bucket: %q", keys)
	}
	if countKeys(keys, repo+"_manifests/tags/1.2.0/") == 0 {
		t.Errorf("no tag 1.2.0 in the bucket: %q", keys)
	}
	if _, err := os.Stat(filepath.Join(root, "storage")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the S3 hub wrote %s/storage: %v", root, err)
	}

	// Remove: unreadable, the tag is gone from the bucket, the version
	// is free again.
	if p, err := bob.Remove(ctx, "acme", "shop", "1.2.0"); err != nil || p.Status != hub.StatusRemoved {
		t.Fatalf("remove: %v %v", p, err)
	}
	if _, err := bob.Pull(ctx, "acme", "shop", "1.2.0", filepath.Join(dir, "again.skiff"), hubclient.PullOptions{}); err == nil {
		t.Error("a removed package was pulled")
	}
	if n := countKeys(s3Keys(t, b, repo+"_manifests/tags/"), "/tags/1.2.0/"); n != 0 {
		t.Errorf("the tag of a removed package is still in the bucket (%d keys)", n)
	}
	if res, err := alice.Push(ctx, archive, "acme", hubclient.PushOptions{}); err != nil || res.Package.Status != hub.StatusPending {
		t.Fatalf("push again after remove: %+v %v", res, err)
	}

	// An unfinished upload stays until it is older than UploadPurgeAge,
	// then housekeeping deletes it from the bucket.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+"/v2/acme/shop/blobs/uploads/", nil)
	req.SetBasicAuth("alice", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting an upload: %s", resp.Status)
	}
	if n := countKeys(s3Keys(t, b, repo+"_uploads/"), "/_uploads/"); n == 0 {
		t.Fatal("the unfinished upload is not in the bucket")
	}
	if r, err := h.Maintain(ctx); err != nil || r.UploadsPurged != 0 {
		t.Fatalf("housekeeping now: %+v %v, want nothing purged", r, err)
	}
	clock.Add(time.Hour + time.Minute)
	if r, err := h.Maintain(ctx); err != nil || r.UploadsPurged != 1 {
		t.Fatalf("housekeeping after the purge age: %+v %v, want the upload purged", r, err)
	}
	if keys := s3Keys(t, b, repo+"_uploads/"); len(keys) != 0 {
		t.Errorf("the purged upload is still in the bucket: %q", keys)
	}

	if _, err := hub.Check(ctx, hub.CheckOptions{Root: root}); !errors.Is(err, hub.ErrNotFilesystem) {
		t.Errorf("check of an S3 hub: %v, want ErrNotFilesystem", err)
	}
	if _, err := hub.Backup(ctx, &bytes.Buffer{}, hub.BackupOptions{Root: root}); !errors.Is(err, hub.ErrNotFilesystem) {
		t.Errorf("backup of an S3 hub: %v, want ErrNotFilesystem", err)
	}
}
