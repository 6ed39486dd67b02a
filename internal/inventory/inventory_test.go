package inventory_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/inventory"
	"github.com/skiffhq/skiff/internal/oci"
)

func TestWriteRead(t *testing.T) {
	a, b := digest.FromString("a"), digest.FromString("b")
	inv := inventory.New("registry x", map[digest.Digest]int64{b: 2, a: 1})
	path := filepath.Join(t.TempDir(), "inv.json")
	if err := inventory.Write(path, inv); err != nil {
		t.Fatal(err)
	}
	got, err := inventory.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Has(a, 1) || !got.Has(b, 2) || got.Has(a, 2) || got.Has(digest.FromString("c"), 1) {
		t.Errorf("Has is wrong for %+v", got.Blobs)
	}
	d1, _ := inv.Digest()
	d2, _ := got.Digest()
	raw, _ := os.ReadFile(path)
	if d1 != d2 || d1 != digest.FromBytes(raw) {
		t.Errorf("digest %s, after a round trip %s, of the file %s: want one identity", d1, d2, digest.FromBytes(raw))
	}
	if n, size := got.Size(); n != 2 || size != 3 {
		t.Errorf("Size() = %d, %d", n, size)
	}
}

func TestParseErrors(t *testing.T) {
	good := digest.FromString("a").String()
	for name, in := range map[string]string{
		"not json":  "tar",
		"version":   `{"version":2,"source":"","blobs":[]}`,
		"digest":    `{"version":1,"source":"","blobs":[{"digest":"md5:abc","size":1}]}`,
		"size":      `{"version":1,"source":"","blobs":[{"digest":"` + good + `","size":-1}]}`,
		"duplicate": `{"version":1,"source":"","blobs":[{"digest":"` + good + `","size":1},{"digest":"` + good + `","size":1}]}`,
		"unknown":   `{"version":1,"source":"","blobs":[],"extra":1}`,
		"trailing":  `{"version":1,"source":"","blobs":[]} {}`,
	} {
		if _, err := inventory.Parse([]byte(in)); !errors.Is(err, inventory.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

func TestFromRegistryAndArchive(t *testing.T) {
	ctx := context.Background()
	reg := fixture.Registry(t)
	img := fixture.PushImage(t, reg+"/app:1", fixture.ImageOptions{Layers: []int{1000, 2000}})
	inv, err := inventory.FromRegistry(ctx, reg+"/some/prefix", oci.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := inv.Size(); n != 4 || !inv.Has(img.Digest, img.Size) {
		t.Errorf("registry inventory %+v: want the manifest, config and 2 layers", inv.Blobs)
	}
	if !strings.Contains(inv.Source, "some/prefix") {
		t.Errorf("source %q", inv.Source)
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "skiff.yaml"), []byte("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: p, version: 1.0.0}\nimages: ["+reg+"/app:1]\n"), 0o644)
	out := filepath.Join(dir, "p.skiff")
	res, err := build.Build(ctx, build.Options{Spec: dir, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	ainv, err := inventory.FromArchive(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := ainv.Size(); n != res.Blobs {
		t.Errorf("archive inventory has %d blobs, the archive %d", n, res.Blobs)
	}
	for _, b := range inv.Blobs {
		if !ainv.Has(b.Digest, b.Size) {
			t.Errorf("archive inventory lacks %s", b.Digest)
		}
	}
	if _, err := inventory.FromArchive(ctx, filepath.Join(dir, "skiff.yaml")); err == nil {
		t.Error("FromArchive of a non-archive succeeded")
	}
}

func FuzzReadInventory(f *testing.F) {
	good := digest.FromString("a").String()
	for _, s := range []string{
		`{"version":1,"source":"registry r","blobs":[` + "\n" + `{"digest":"` + good + `","size":1}` + "\n]}\n",
		`{"version":1,"source":"","blobs":[]}`,
		`{"version":1,"source":"","blobs":[{"digest":"sha256:zz","size":1}]}`,
		`{"version":1,"blobs":null}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := inventory.Parse(b)
		if err != nil {
			return
		}
		out, err := inv.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := inventory.Parse(out)
		if err != nil {
			t.Fatalf("canonical encoding rejected: %v\n%s", err, out)
		}
		d1, _ := inv.Digest()
		d2, _ := again.Digest()
		if d1 != d2 {
			t.Fatalf("digest changed across a round trip: %s vs %s", d1, d2)
		}
		for _, bl := range inv.Blobs {
			if !again.Has(bl.Digest, bl.Size) {
				t.Fatalf("lost %s", bl.Digest)
			}
		}
	})
}
