package install_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/install"
)

// manifestsArchive writes a package holding one manifest set layer, z,
// with the given media type.
func manifestsArchive(t *testing.T, mediaType string, z []byte) string {
	t.Helper()
	ctx := context.Background()
	s := memory.New()
	d := &bundle.Description{
		Name: "bomb", Version: "1.0.0",
		Spec:      &v1alpha1.Package{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: v1alpha1.Metadata{Name: "bomb", Version: "1.0.0"}},
		Manifests: []bundle.ManifestSet{{Name: "extras", Digest: digest.FromBytes(z), Size: int64(len(z))}},
	}
	root, err := bundle.Assemble(ctx, s, d, nil, []bundle.Layer{{MediaType: mediaType, Title: "extras", Data: z}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bomb.skiff")
	if _, err := bundle.Write(ctx, s, root, out, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return out
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestDryRunManifestSets: a manifest set is read under either media type
// the format has used, and a decompression bomb (about 33 KB expanding to
// 1 GiB) is refused without being expanded.
func TestDryRunManifestSets(t *testing.T) {
	yaml := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n")
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	var bomb bytes.Buffer
	enc.Reset(&bomb)
	if _, err := io.Copy(enc, io.LimitReader(zeros{}, 1<<30)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		mediaType string
		z         []byte
		want      error
	}{
		{"current media type", bundle.MediaTypeManifests, enc.EncodeAll(yaml, nil), nil},
		{"media type of older archives", bundle.MediaTypeManifestsV0, enc.EncodeAll(yaml, nil), nil},
		{"decompression bomb", bundle.MediaTypeManifests, bomb.Bytes(), bundle.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := install.Open(context.Background(), manifestsArchive(t, tt.mediaType, tt.z), bundle.OpenOptions{SkipSignature: true})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var out bytes.Buffer
			_, err = install.Install(context.Background(), p, install.Options{
				Deployment: "bomb", Namespace: "default", DryRun: true, DryRunOut: &out,
				Load: install.LoadOptions{Registry: "127.0.0.1:5000/mirror"},
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Install(dry run) error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && !strings.Contains(out.String(), "name: extra") {
				t.Errorf("dry run output lacks the manifest set:\n%s", out.String())
			}
		})
	}
}
