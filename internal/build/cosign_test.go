package build_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/cosign"
	"github.com/skiffhq/skiff/internal/cosign/cosigntest"
	"github.com/skiffhq/skiff/internal/fixture"
)

// TestBuildVerifiesCosignSignatures: images skiff.yaml names a cosign key
// for (by repository or by registry) must carry a signature made with it
// of the digest pulled (the multi-arch index, before filtering).
func TestBuildVerifiesCosignSignatures(t *testing.T) {
	reg := fixture.Registry(t)
	key, pub := cosigntest.NewECDSAKey(t)
	_, otherPub := cosigntest.NewECDSAKey(t)
	opts := fixture.ImageOptions{Layers: []int{512}, Platforms: []string{"linux/amd64", "linux/arm64"}}
	opts.Seed = 1
	signed := fixture.PushImage(t, reg+"/signed:1", opts).Digest
	opts.Seed = 2
	fixture.PushImage(t, reg+"/unsigned:1", opts)
	cosigntest.Sign(t, reg+"/signed", signed, signed, key)
	opts.Seed = 3
	keyless := fixture.PushImage(t, reg+"/keyless:1", opts).Digest
	cosigntest.SignKeyless(t, reg+"/keyless", keyless)

	for _, tc := range []struct {
		name, images, rules string
		want                error
	}{
		{"repository rule, signed", "[" + reg + "/signed:1, " + reg + "/unsigned:1]", "[{image: " + reg + "/signed, publicKey: cosign.pub}]", nil},
		{"registry rule, signed", "[" + reg + "/signed:1]", "[{registry: '" + reg + "', publicKey: cosign.pub}]", nil},
		{"registry rule, unsigned", "[" + reg + "/signed:1, " + reg + "/unsigned:1]", "[{registry: '" + reg + "', publicKey: cosign.pub}]", cosign.ErrUnsigned},
		{"other key", "[" + reg + "/signed:1]", "[{image: " + reg + "/signed, publicKey: other.pub}]", cosign.ErrMisSigned},
		{"keyless only", "[" + reg + "/keyless:1]", "[{image: " + reg + "/keyless, publicKey: cosign.pub}]", cosign.ErrKeyless},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "skiff.yaml"), "apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: app, version: 1.0.0}\nplatforms: [linux/amd64]\nimages: "+tc.images+"\nimageSignatures: "+tc.rules+"\n")
			writeFile(t, filepath.Join(dir, "cosign.pub"), string(pub))
			writeFile(t, filepath.Join(dir, "other.pub"), string(otherPub))
			out := filepath.Join(t.TempDir(), "a.skiff")
			_, err := build.Build(context.Background(), build.Options{Spec: dir, Output: out})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "imageSignatures[0]") {
				t.Fatalf("Build = %v, want %v naming the rule", err, tc.want)
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Error("a refused build wrote the archive")
			}
		})
	}
}
