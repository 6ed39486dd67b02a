package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
)

// TestHandlerRepository: what the storage API of a handler writes, its
// HTTP API serves, and the reverse; missing content and tags wrap
// errdef.ErrNotFound; a deleted tag is gone from the HTTP API at once.
func TestHandlerRepository(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	h, err := NewHandler(ctx, HandlerOptions{RootDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	repo, err := h.Repository(ctx, "acme/app")
	if err != nil {
		t.Fatal(err)
	}

	layer := []byte("layer content")
	ld := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	cfg := []byte("{}")
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}})
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m))}

	if ok, err := repo.Exists(ctx, ld); ok || err != nil {
		t.Fatalf("exists before the push: %v %v", ok, err)
	}
	if _, err := repo.Fetch(ctx, ld); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("fetching a missing blob: %v", err)
	}
	if _, err := repo.Fetch(ctx, md); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("fetching a missing manifest: %v", err)
	}
	for _, c := range []struct {
		d ocispec.Descriptor
		b []byte
	}{{ld, layer}, {cd, cfg}, {md, m}} {
		if err := repo.Push(ctx, c.d, bytes.NewReader(c.b)); err != nil {
			t.Fatalf("push %s: %v", c.d.MediaType, err)
		}
	}
	bad := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("other"), Size: int64(len(m))}
	if err := repo.Push(ctx, bad, bytes.NewReader(m)); err == nil {
		t.Fatal("a manifest not matching its descriptor was stored")
	}
	if err := repo.Tag(ctx, md, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []ocispec.Descriptor{ld, cd, md} {
		if ok, err := repo.Exists(ctx, d); !ok || err != nil {
			t.Fatalf("exists %s: %v %v", d.MediaType, ok, err)
		}
	}
	if st, err := repo.Stat(ctx, ld.Digest); err != nil || st.Size != ld.Size {
		t.Fatalf("stat: %+v %v", st, err)
	}
	rc, err := repo.Fetch(ctx, md)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, m) {
		t.Fatal("the manifest read back differs")
	}

	status := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/v2/acme/app/manifests/1.0.0", "/v2/acme/app/manifests/" + md.Digest.String(), "/v2/acme/app/blobs/" + ld.Digest.String()} {
		if s := status(p); s != http.StatusOK {
			t.Fatalf("GET %s: %d", p, s)
		}
	}

	if err := repo.Untag(ctx, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if s := status("/v2/acme/app/manifests/1.0.0"); s != http.StatusNotFound {
		t.Fatalf("GET of the deleted tag: %d", s)
	}
	if s := status("/v2/acme/app/manifests/" + md.Digest.String()); s != http.StatusOK {
		t.Fatalf("GET of the untagged manifest: %d", s)
	}
	if err := repo.Untag(ctx, "1.0.0"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("deleting a missing tag: %v", err)
	}
	// Mounting links a blob another repository holds; one it lacks is
	// copied from getContent, or not found without it.
	other, err := h.Repository(ctx, "acme/other")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Mount(ctx, ld, "acme/app", nil); err != nil {
		t.Fatalf("mount: %v", err)
	}
	if ok, err := other.Exists(ctx, ld); !ok || err != nil {
		t.Fatalf("the mounted blob: %v %v", ok, err)
	}
	more := []byte("more")
	dd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(more), Size: int64(len(more))}
	if err := other.Mount(ctx, dd, "acme/app", nil); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("mounting a blob the source lacks: %v", err)
	}
	if err := other.Mount(ctx, dd, "acme/app", func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(more)), nil }); err != nil {
		t.Fatalf("mounting with content: %v", err)
	}
	if ok, err := other.Exists(ctx, dd); !ok || err != nil {
		t.Fatalf("the copied blob: %v %v", ok, err)
	}
	if _, err := h.Repository(ctx, "Not A Name"); err == nil {
		t.Fatal("an invalid repository name was accepted")
	}
}
