package install_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/cosign"
	"github.com/skiffhq/skiff/internal/cosign/cosigntest"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
)

// TestLoadCarriesCosignSignatures: build carries an image's cosign
// signature tag, and load pushes it beside the relocated image, where it
// still verifies with the key; nothing is fetched from the source then.
func TestLoadCarriesCosignSignatures(t *testing.T) {
	ctx := context.Background()
	src := fixture.Registry(t)
	key, pub := cosigntest.NewECDSAKey(t)
	d := fixture.PushImage(t, src+"/team/signed:1", fixture.ImageOptions{Layers: []int{256}, Platforms: []string{"linux/amd64"}, Seed: 7}).Digest
	cosigntest.Sign(t, src+"/team/signed", d, d, key)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "skiff.yaml"), []byte("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: sig, version: 1.0.0}\nimages: ["+src+"/team/signed:1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sig.skiff")
	if _, err := build.Build(ctx, build.Options{Spec: dir, Output: out, NoSBOM: true}); err != nil {
		t.Fatal(err)
	}
	dst := fixture.Registry(t)
	lres, err := install.Load(ctx, openArchive(t, out, nil), install.LoadOptions{Registry: dst + "/mirror"})
	if err != nil {
		t.Fatal(err)
	}
	target := lres.Map[src+"/team/signed:1"]
	repoRef := target[:len(target)-len("@"+d.String())]
	repo, err := remote.NewRepository(repoRef)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	k, err := cosign.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := cosign.Verify(ctx, repo, d, k); err != nil {
		t.Fatalf("the relocated image's signature: %v", err)
	}
}
