package install_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/inventory"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/sign"
)

// shared is a base layer common to every generated image.
var shared = [][]byte{bytes.Repeat([]byte("shared base layer "), 4000)}

// writeSpec writes a package listing images and returns its directory.
func writeSpec(t *testing.T, version string, images []string) string {
	t.Helper()
	dir := t.TempDir()
	spec := fmt.Sprintf("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: delta-demo, version: %s}\nplatforms: [linux/amd64]\nimages: [%s]\n",
		version, strings.Join(images, ", "))
	if err := os.WriteFile(filepath.Join(dir, "skiff.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDeltaLoad(t *testing.T) {
	ctx := context.Background()
	up := fixture.Registry(t)
	for i, name := range []string{"a:1", "b:1", "c:1"} {
		fixture.PushImage(t, up+"/"+name, fixture.ImageOptions{Layers: []int{20_000, 5_000}, Shared: shared, Seed: int64(i + 1)})
	}
	// Version 2: b:2 keeps the shared base layer but has a new layer; d
	// is a new repository whose base layer the registry holds elsewhere.
	fixture.PushImage(t, up+"/b:2", fixture.ImageOptions{Layers: []int{7_000}, Shared: shared, Seed: 99})
	fixture.PushImage(t, up+"/d:1", fixture.ImageOptions{Layers: []int{3_000}, Shared: shared, Seed: 100})

	key, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	v1 := filepath.Join(out, "v1.skiff")
	if _, err := build.Build(ctx, build.Options{Spec: writeSpec(t, "1.0.0", []string{up + "/a:1", up + "/b:1", up + "/c:1"}), Output: v1, SignKey: key}); err != nil {
		t.Fatalf("build v1: %v", err)
	}
	v2spec := writeSpec(t, "2.0.0", []string{up + "/a:1", up + "/b:2", up + "/c:1", up + "/d:1"})
	full := filepath.Join(out, "full.skiff")
	fres, err := build.Build(ctx, build.Options{Spec: v2spec, Output: full})
	if err != nil {
		t.Fatalf("build full v2: %v", err)
	}
	// airgap starts a registry holding v1.
	airgap := func(t *testing.T) string {
		reg := fixture.Registry(t)
		if _, err := install.Load(ctx, openArchive(t, v1, nil), install.LoadOptions{Registry: reg + "/mirror"}); err != nil {
			t.Fatalf("load v1: %v", err)
		}
		return reg
	}

	for _, from := range []string{"inventory", "archive"} {
		t.Run(from, func(t *testing.T) {
			reg := airgap(t)
			base := v1
			var invDigest digest.Digest
			if from == "inventory" {
				inv, err := inventory.FromRegistry(ctx, reg+"/mirror", oci.RemoteOptions{})
				if err != nil {
					t.Fatal(err)
				}
				base = filepath.Join(t.TempDir(), "inv.json")
				if err := inventory.Write(base, inv); err != nil {
					t.Fatal(err)
				}
				invDigest, _ = inv.Digest()
			}
			delta := filepath.Join(t.TempDir(), "delta.skiff")
			res, err := build.Build(ctx, build.Options{Spec: v2spec, Output: delta, SignKey: key, DeltaFrom: base})
			if err != nil {
				t.Fatalf("build delta: %v", err)
			}
			d := res.Description.Delta
			if d == nil || len(d.Omitted) == 0 || res.Omitted == 0 {
				t.Fatalf("delta %+v, omitted %d: want omissions", d, res.Omitted)
			}
			if from == "inventory" && d.Base != invDigest.String() {
				t.Errorf("base %s, want the inventory digest %s", d.Base, invDigest)
			}
			if res.Root.Annotations[bundle.AnnotationDeltaBase] != d.Base {
				t.Errorf("root annotation %q, want %q", res.Root.Annotations[bundle.AnnotationDeltaBase], d.Base)
			}
			if res.Bytes >= fres.Bytes/2 {
				t.Errorf("delta is %d bytes, the full package %d: want much smaller", res.Bytes, fres.Bytes)
			}

			// Verify: without allowing omissions it fails, with it passes.
			if _, err := bundle.Verify(ctx, delta, bundle.VerifyOptions{}); !errors.Is(err, bundle.ErrMissingBlob) {
				t.Errorf("strict verify: %v, want ErrMissingBlob", err)
			}
			vres, err := bundle.Verify(ctx, delta, bundle.VerifyOptions{Allow: func(digest.Digest) bool { return true }})
			if err != nil {
				t.Fatalf("verify delta: %v", err)
			}
			if len(vres.Omitted) == 0 {
				t.Error("verify reports no omitted blobs")
			}

			// Into an empty registry: the base is missing.
			empty := fixture.Registry(t)
			_, err = install.Load(ctx, openArchive(t, delta, nil), install.LoadOptions{Registry: empty + "/mirror"})
			if !errors.Is(err, install.ErrBaseMissing) || !strings.Contains(err.Error(), "load the base package first") {
				t.Fatalf("load into an empty registry: %v, want ErrBaseMissing", err)
			}

			// Into the registry holding the base: every image complete and
			// pinned.
			lres, err := install.Load(ctx, openArchive(t, delta, nil), install.LoadOptions{Registry: reg + "/mirror"})
			if err != nil {
				t.Fatalf("load delta: %v", err)
			}
			if lres.Base == nil || lres.Base.Mounted == 0 {
				t.Errorf("base present %d, mounted %d: want the shared layer mounted into the new repository", lres.Base.Present, lres.Base.Mounted)
			}
			var pinned []string
			for src, target := range lres.Map {
				if !strings.Contains(target, "@sha256:") {
					t.Errorf("%s → %s is not pinned", src, target)
				}
				pinned = append(pinned, target)
			}
			if len(pinned) != 4 {
				t.Fatalf("map %v, want 4 images", lres.Map)
			}
			// A full pull of each pinned image proves its graph is whole
			// in its repository.
			if _, err := oci.Pull(ctx, pinned, memory.New(), oci.PullOptions{}); err != nil {
				t.Fatalf("pulling the loaded images back: %v", err)
			}
		})
	}
}

// TestLoadResume cancels a load midway; a second load sends only what the
// first did not.
func TestLoadResume(t *testing.T) {
	ctx := context.Background()
	up := fixture.Registry(t)
	var refs []string
	for i := range 6 {
		ref := fmt.Sprintf("%s/img%d:1", up, i)
		fixture.PushImage(t, ref, fixture.ImageOptions{Layers: []int{40_000, 30_000}, Seed: int64(i + 1)})
		refs = append(refs, ref)
	}
	path := filepath.Join(t.TempDir(), "p.skiff")
	if _, err := build.Build(ctx, build.Options{Spec: writeSpec(t, "1.0.0", refs), Output: path}); err != nil {
		t.Fatal(err)
	}
	p := openArchive(t, path, nil)

	// The whole package, loaded in one go.
	ref, err := install.Load(ctx, p, install.LoadOptions{Registry: fixture.Registry(t), Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	total := ref.Push.BytesPushed

	// Killed after 5 blobs.
	reg := fixture.Registry(t)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done1, blobs1 int64
	var largest int64
	_, err = install.Load(cctx, p, install.LoadOptions{Registry: reg, Concurrency: 1, Progress: func(e oci.Event) {
		if e.Kind == oci.BlobDone && !strings.Contains(e.MediaType, "manifest") && !strings.Contains(e.MediaType, "index") {
			done1 += e.Size
			blobs1++
			largest = max(largest, e.Size)
			if blobs1 == 5 {
				cancel()
			}
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted load: %v, want context.Canceled", err)
	}
	if done1 == 0 || done1 >= total {
		t.Fatalf("first run pushed %d of %d bytes: want part", done1, total)
	}

	res, err := install.Load(ctx, p, install.LoadOptions{Registry: reg, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	run2 := res.Push.BytesPushed
	if run2 >= total {
		t.Errorf("resumed load pushed %d bytes, the whole package is %d: completed blobs were sent again", run2, total)
	}
	// Blobs completed in run 1 are not sent again; at most the blob in
	// flight when the load was killed is.
	if sum := done1 + run2; sum < total || sum > total+largest {
		t.Errorf("run 1 (%d) + run 2 (%d) = %d bytes, want about %d", done1, run2, sum, total)
	}
	if res.Push.BytesSkipped < done1 {
		t.Errorf("resumed load skipped %d bytes, want at least the %d already sent", res.Push.BytesSkipped, done1)
	}
}
