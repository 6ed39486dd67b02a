package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/errdef"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}).Read(b)
	return b
}

func pushBytes(t testing.TB, s content.Pusher, mediaType string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := content.NewDescriptorFromBytes(mediaType, b)
	d.Data = nil
	if err := s.Push(context.Background(), d, bytes.NewReader(b)); err != nil {
		t.Fatalf("push %s: %v", d.Digest, err)
	}
	return d
}

func pushJSON(t testing.TB, s content.Pusher, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return pushBytes(t, s, mediaType, b)
}

// newImage pushes a single-platform image of nLayers random layers of size
// bytes and returns its manifest descriptor, annotated with ref.
func newImage(t testing.TB, s content.Pusher, ref string, seed uint64, nLayers, size int) ocispec.Descriptor {
	t.Helper()
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i := range nLayers {
		l := pushBytes(t, s, ocispec.MediaTypeImageLayerGzip, randBytes(seed*1000+uint64(i), size))
		layers = append(layers, l)
		diffIDs = append(diffIDs, l.Digest)
	}
	cfg := pushJSON(t, s, ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	m := pushJSON(t, s, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfg,
		Layers:    layers,
	})
	m.Annotations = map[string]string{AnnotationRefName: ref}
	return m
}

// newIndexImage pushes a two-platform image index.
func newIndexImage(t testing.TB, s content.Pusher, ref string, seed uint64) ocispec.Descriptor {
	t.Helper()
	a := newImage(t, s, "", seed, 1, 64)
	b := newImage(t, s, "", seed+1, 1, 64)
	a.Annotations, b.Annotations = nil, nil
	a.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	b.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	idx := pushJSON(t, s, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{a, b},
	})
	idx.Annotations = map[string]string{AnnotationRefName: ref}
	return idx
}

// pkg is an assembled test package.
type pkg struct {
	store  *memory.Store
	root   ocispec.Descriptor
	images []ocispec.Descriptor
	desc   *Description
}

// buildOptions tune buildPackage.
type buildOptions struct {
	layerSize int // bytes per image layer; 256 if 0
	layers    int // layers per image; 2 if 0
	delta     *Delta
}

// buildPackage assembles a small package (two images, a chart, a manifest
// set, files) in a fresh memory store.
func buildPackage(t testing.TB, o buildOptions) *pkg {
	t.Helper()
	ctx := context.Background()
	if o.layerSize == 0 {
		o.layerSize = 256
	}
	if o.layers == 0 {
		o.layers = 2
	}
	s := memory.New()
	images := []ocispec.Descriptor{
		newImage(t, s, "docker.io/library/nginx:1.27", 1, o.layers, o.layerSize),
		newIndexImage(t, s, "ghcr.io/example/app:v1", 7),
	}
	d := &Description{
		Name:    "demo",
		Version: "1.0.0",
		Spec: &v1alpha1.Package{
			APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind,
			Metadata: v1alpha1.Metadata{Name: "demo", Version: "1.0.0"},
		},
		Platforms: []string{"linux/arm64", "linux/amd64"},
		Charts:    []Chart{{Name: "web", Chart: "nginx", Version: "1.2.3", Images: []string{"b", "a"}}},
		Manifests: []ManifestSet{{Name: "extras"}},
		Files:     []File{{Target: "z.txt"}, {Target: "a.txt"}},
		Delta:     o.delta,
		CreatedBy: "skiff test",
	}
	for _, img := range images {
		d.Images = append(d.Images, Image{Ref: img.Annotations[AnnotationRefName], Digest: img.Digest, MediaType: img.MediaType, Size: img.Size})
	}
	layers := []Layer{
		{MediaType: MediaTypeChart, Data: []byte("chart-archive"), Title: "web"},
		{MediaType: MediaTypeManifests, Data: []byte("manifest-set"), Title: "extras"},
		{MediaType: MediaTypeFiles, Data: []byte("files"), Title: "files"},
	}
	root, err := Assemble(ctx, s, d, images, layers)
	if err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	return &pkg{store: s, root: root, images: images, desc: d}
}

// writePackage writes p to a file in dir and returns its path.
func writePackage(t testing.TB, p *pkg, dir string, opts WriteOptions) string {
	t.Helper()
	out := filepath.Join(dir, "demo.skiff")
	if _, err := Write(context.Background(), p.store, p.root, out, opts); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return out
}

// member is one tar member, for crafting archives.
type member struct {
	hdr  *tar.Header
	data []byte
}

func readMembers(t testing.TB, path string) []member {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var ms []member
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ms
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{hdr, b})
	}
}

func writeMembers(t testing.TB, path string, ms []member) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		if err := tw.WriteHeader(m.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// verifyBytes runs VerifyReader over a file through a reader that cannot
// seek.
func verifyBytes(t testing.TB, path string, opts VerifyOptions) (*VerifyResult, error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return VerifyReader(context.Background(), struct{ io.Reader }{bytes.NewReader(b)}, opts)
}

// hiding is a storage that pretends not to hold one blob.
type hiding struct {
	content.ReadOnlyStorage
	hide digest.Digest
}

func (h hiding) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if d.Digest == h.hide {
		return nil, errNotFound(d.Digest)
	}
	return h.ReadOnlyStorage.Fetch(ctx, d)
}

func (h hiding) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	if d.Digest == h.hide {
		return false, nil
	}
	return h.ReadOnlyStorage.Exists(ctx, d)
}

func errNotFound(d digest.Digest) error { return fmt.Errorf("blob %s: %w", d, errdef.ErrNotFound) }
