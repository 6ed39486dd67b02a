package sbom_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/sbom"
	"github.com/skiffhq/skiff/internal/sbom/sbomtest"
)

// countingFetcher counts the fetches of each blob.
type countingFetcher struct {
	content.Fetcher
	mu sync.Mutex
	n  map[digest.Digest]int
}

func (c *countingFetcher) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	c.mu.Lock()
	c.n[d.Digest]++
	c.mu.Unlock()
	return c.Fetcher.Fetch(ctx, d)
}

// TestLayersReadsSharedLayersOnce: two images share three base layers;
// each distinct layer is read once, and each image's SBOM is the one
// Generate makes for it alone (one image's own layer hides the dpkg
// database of the shared base, the other's does not).
func TestLayersReadsSharedLayersOnce(t *testing.T) {
	host := fixture.Registry(t)
	base := sbomtest.Image(t)
	hide := sbomtest.Layer{MediaType: ocispec.MediaTypeImageLayer, Data: sbomtest.TarLayer(t, []sbomtest.File{{Name: "var/lib/dpkg/status", Data: []byte("\n")}})}
	other := sbomtest.Layer{MediaType: ocispec.MediaTypeImageLayer, Data: sbomtest.TarLayer(t, []sbomtest.File{{Name: "srv/data.txt", Data: []byte("data")}})}
	a := sbomtest.PushLayers(t, host+"/share/app:a", "linux/amd64", append(slices.Clone(base), hide))
	b := sbomtest.PushLayers(t, host+"/share/app:b", "linux/amd64", append(slices.Clone(base), other))
	repo, err := remote.NewRepository(host + "/share/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	ctx := t.Context()
	src := &countingFetcher{Fetcher: repo, n: map[digest.Digest]int{}}
	imgs := []sbom.Image{{Ref: "share/app:a", Descriptor: a}, {Ref: "share/app:b", Descriptor: b}}
	opts := sbom.Options{TempDir: t.TempDir()}
	layers, entries, err := sbom.Layers(ctx, src, imgs, &bundle.Description{Name: "p", Version: "1.0.0"}, sbom.LayersOptions{Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range append(slices.Clone(base), hide, other) {
		if n := src.n[digest.FromBytes(l.Data)]; n != 1 {
			t.Errorf("layer %s read %d times, want once", digest.FromBytes(l.Data), n)
		}
	}
	if len(entries) != 3 { // two images and the package
		t.Fatalf("entries = %+v", entries)
	}
	for i, im := range imgs {
		o := opts
		o.Ref, o.Platform = im.Ref, "linux/amd64"
		want, err := sbom.Generate(ctx, repo, im.Descriptor, o)
		if err != nil {
			t.Fatal(err)
		}
		if string(layers[i].Data) != string(want) {
			t.Errorf("SBOM of %s differs from Generate's:\n%s\nwant\n%s", im.Ref, layers[i].Data, want)
		}
		hasLibc := slices.ContainsFunc(purls(t, layers[i].Data), func(p string) bool { return strings.Contains(p, "libc6") })
		if hasLibc != (i == 1) {
			t.Errorf("SBOM of %s lists libc6: %v, want %v", im.Ref, hasLibc, i == 1)
		}
	}
}
