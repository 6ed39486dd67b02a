// Package hubtest holds test helpers shared by the tests of the hub and
// its client: database backends, signing keys, small package archives and
// running hubs. It does not import the hub, so the hub's own in-package
// tests can use it too. Import it from tests only.
package hubtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/sign"
)

// PostgresEnv names a PostgreSQL URL the tests also run against
// (hack/postgres.sh starts one; hack/test.sh sets it).
const PostgresEnv = "SKIFF_TEST_POSTGRES_URL"

// Backend is a metadata database to run a test against: URL is empty
// for SQLite.
type Backend struct{ Name, URL string }

// Backends are SQLite, and PostgreSQL when $SKIFF_TEST_POSTGRES_URL is set.
func Backends(t *testing.T) []Backend {
	b := []Backend{{"sqlite", ""}}
	if u := os.Getenv(PostgresEnv); u != "" {
		b = append(b, Backend{"postgres", u})
	} else {
		t.Logf("PostgreSQL tests skipped: set %s (hack/postgres.sh start)", PostgresEnv)
	}
	return b
}

// Postgres returns a PostgreSQL URL on a new schema dropped after the
// test. When $SKIFF_TEST_POSTGRES_URL is not set it skips the test, or
// fails it in CI ($CI non-empty), where every tier must run.
func Postgres(t *testing.T) string {
	t.Helper()
	u := os.Getenv(PostgresEnv)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests (hack/postgres.sh start)", PostgresEnv)
		}
		t.Skipf("set %s (hack/postgres.sh start) to run this test", PostgresEnv)
	}
	return FreshSchema(t, u)
}

// S3Env names the S3 server the hub's S3 storage tests run against, as
// http://ACCESS_KEY:SECRET_KEY@HOST:PORT/BUCKET (hack/s3.sh starts one,
// a real SeaweedFS that checks signatures; hack/test.sh sets it).
const S3Env = "SKIFF_TEST_S3_URL"

// S3Bucket is an existing bucket of an S3 server and its credentials.
type S3Bucket struct {
	// Endpoint is http://HOST:PORT.
	Endpoint, Region, Bucket string
	AccessKey, SecretKey     string
}

// S3 returns the bucket $SKIFF_TEST_S3_URL names. When it is not set it
// skips the test, or fails it in CI ($CI non-empty), where every tier
// must run.
func S3(t *testing.T) S3Bucket {
	t.Helper()
	v := os.Getenv(S3Env)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the S3 storage tests (hack/s3.sh start)", S3Env)
		}
		t.Skipf("set %s (hack/s3.sh start) to run this test", S3Env)
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		t.Fatalf("%s: want http://ACCESS_KEY:SECRET_KEY@HOST:PORT/BUCKET (%v)", S3Env, err)
	}
	secret, _ := u.User.Password()
	return S3Bucket{
		Endpoint: u.Scheme + "://" + u.Host, Region: "us-east-1", Bucket: strings.Trim(u.Path, "/"),
		AccessKey: u.User.Username(), SecretKey: secret,
	}
}

// FreshSchema returns url pointing at a new, empty schema dropped after
// the test; "" (SQLite) stays "".
func FreshSchema(t *testing.T, url string) string {
	t.Helper()
	if url == "" {
		return ""
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "hubtest_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}

// TrustedKey returns a signing key and a trust directory holding its
// public key.
func TrustedKey(t testing.TB) (*sign.PrivateKey, string) {
	t.Helper()
	key, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pub, _ := sign.MarshalPublicKey(key.Public())
	if err := sign.AddTrusted(dir, pub, "publisher"); err != nil {
		t.Fatal(err)
	}
	return key, dir
}

// Server is what [Serve] runs: a hub.
type Server interface {
	http.Handler
	Close() error
}

// Serve serves h on 127.0.0.1 until the test ends (then closes it) and
// returns its host:port.
func Serve(t testing.TB, h Server) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	return strings.TrimPrefix(srv.URL, "http://")
}

// Push stores b in s and returns its descriptor.
func Push(t testing.TB, s *memory.Store, mediaType string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := content.NewDescriptorFromBytes(mediaType, b)
	d.Data = nil
	if err := s.Push(context.Background(), d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return d
}

// PushJSON stores v as JSON in s and returns its descriptor.
func PushJSON(t testing.TB, s *memory.Store, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return Push(t, s, mediaType, b)
}

// WriteArchive assembles the package d of images and layers from s,
// writes it to dir/NAME-VERSION.skiff and, unless key is nil, signs it.
// It returns the archive's path.
func WriteArchive(t testing.TB, s *memory.Store, d *bundle.Description, images []ocispec.Descriptor, layers []bundle.Layer, dir string, key *sign.PrivateKey) string {
	t.Helper()
	ctx := context.Background()
	root, err := bundle.Assemble(ctx, s, d, images, layers)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, d.Name+"-"+d.Version+".skiff")
	if _, err := bundle.Write(ctx, s, root, out, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if key != nil {
		env, err := sign.Sign(ctx, key, sign.Subject{Name: d.Name + ":" + d.Version, Digest: root.Digest}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := bundle.AddSignature(ctx, out, env); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Archive writes a small package archive into dir: one image
// (registry.example/acme/NAME:VERSION, linux/amd64) of two random
// 2048-byte layers drawn from seed, and a chart layer; signed with key
// unless key is nil.
func Archive(t *testing.T, dir, name, version string, seed uint64, key *sign.PrivateKey) string {
	t.Helper()
	rnd := mrand.New(mrand.NewPCG(seed, 7))
	var layers [][]byte
	for range 2 {
		b := make([]byte, 2048)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		layers = append(layers, b)
	}
	return ArchiveOf(t, dir, name, version, layers, key)
}

// ArchiveOf writes a package archive into dir like [Archive], its one
// image made of the given layers.
func ArchiveOf(t testing.TB, dir, name, version string, layerData [][]byte, key *sign.PrivateKey) string {
	t.Helper()
	s := memory.New()
	var layers []ocispec.Descriptor
	for _, b := range layerData {
		layers = append(layers, Push(t, s, ocispec.MediaTypeImageLayerGzip, b))
	}
	cfg := PushJSON(t, s, ocispec.MediaTypeImageConfig, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	img := PushJSON(t, s, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers,
	})
	ref := "registry.example/acme/" + name + ":" + version
	img.Annotations = map[string]string{bundle.AnnotationRefName: ref}
	d := &bundle.Description{
		Name: name, Version: version, Description: "the " + name + " package",
		Spec:   &v1alpha1.Package{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: v1alpha1.Metadata{Name: name, Version: version}},
		Images: []bundle.Image{{Ref: ref, Digest: img.Digest, MediaType: img.MediaType, Size: img.Size}},
		Charts: []bundle.Chart{{Name: "web", Chart: "web", Version: "0.1.0", Digest: digest.FromString("chart"), Size: 5}},
	}
	return WriteArchive(t, s, d, []ocispec.Descriptor{img}, []bundle.Layer{{MediaType: bundle.MediaTypeChart, Data: []byte("chart"), Title: "web"}}, dir, key)
}

// Login logs user in to the hub at host with password and returns a client
// holding the token.
func Login(t testing.TB, host, user, password string) *hubclient.Client {
	t.Helper()
	anon, err := hubclient.New(host, hubclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := anon.Login(context.Background(), user, password, "", 0)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	c, err := hubclient.New(host, hubclient.Options{Username: user, Token: tok.Secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
