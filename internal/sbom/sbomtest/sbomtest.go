// Package sbomtest builds small real container images for SBOM and
// vulnerability tests: tar layers with package databases, package
// manifests and a Go binary.
package sbomtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/registry/remote"
)

// File is a file of a generated layer; a name ending in / is a
// directory.
type File struct {
	Name string
	Data []byte
	Mode int64
}

// TarLayer returns an uncompressed tar of files.
func TarLayer(t testing.TB, files []File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}
		if f.Mode != 0 {
			h.Mode = f.Mode
		}
		if strings.HasSuffix(f.Name, "/") {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Gzip compresses b.
func Gzip(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// Zstd compresses b.
func Zstd(t testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// Layer is a layer blob with its media type.
type Layer struct {
	MediaType string
	Data      []byte
}

// PushLayers builds a single-platform image of layers and pushes it to
// ref on a plain-HTTP registry; it returns the manifest descriptor.
func PushLayers(t testing.TB, ref, platform string, layers []Layer) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	push := func(mt string, b []byte) ocispec.Descriptor {
		d := content.NewDescriptorFromBytes(mt, b)
		if err := store.Push(ctx, d, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	goos, arch, _ := strings.Cut(platform, "/")
	var descs []ocispec.Descriptor
	var diffs []digest.Digest
	for _, l := range layers {
		descs = append(descs, push(l.MediaType, l.Data))
		diffs = append(diffs, digest.FromBytes(l.Data))
	}
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: goos, Architecture: arch}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffs}})
	man, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: push(ocispec.MediaTypeImageConfig, cfg), Layers: descs})
	md := push(ocispec.MediaTypeImageManifest, man)
	repo, err := remote.NewRepository(ref)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	if err := oras.CopyGraph(ctx, store, repo, md, oras.DefaultCopyGraphOptions); err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag(ctx, md, repo.Reference.Reference); err != nil {
		t.Fatal(err)
	}
	return md
}

const dpkgStatus = `Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library
 shared libraries

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
`

const apkInstalled = `C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
o:musl

P:busybox-binsh
V:1.36.1-r15
A:x86_64
o:busybox
`

// GoBinary builds a tiny Go program requiring golang.org/x/sync v0.25.0
// (from the module cache, offline) and returns its bytes.
func GoBinary(t testing.TB) []byte {
	t.Helper()
	dir := t.TempDir()
	var sum []string
	goSum, err := os.ReadFile(filepath.Join(moduleRoot(t), "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(goSum), "\n") {
		if strings.HasPrefix(l, "golang.org/x/sync v0.25.0") {
			sum = append(sum, l)
		}
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/hello\n\ngo 1.26\n\nrequire golang.org/x/sync v0.25.0\n")
	write("go.sum", strings.Join(sum, "\n")+"\n")
	write("main.go", "package main\n\nimport \"golang.org/x/sync/errgroup\"\n\nfunc main() { var g errgroup.Group; g.Go(func() error { return nil }); _ = g.Wait() }\n")
	out := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a Go binary: %v\n%s", err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func moduleRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// Image returns the layers of a test image (gzip, zstd and plain tar):
// Debian 12 os-release and dpkg status (libc6 2.36-9+deb12u4 from glibc,
// tzdata 2024a-0+deb12u1), an apk database (musl 1.2.4-r2,
// busybox-binsh 1.36.1-r15), npm left-pad 1.1.0 and @acme/util
// 2.0.0-beta.1, Python Flask_Login 0.6.3, a Go binary built with
// golang.org/x/sync v0.25.0, and whiteouts deleting the npm package
// "gone" and the Python package "old".
func Image(t testing.TB) []Layer {
	t.Helper()
	bin := GoBinary(t)
	l1 := TarLayer(t, []File{
		{Name: "etc/"},
		{Name: "etc/os-release", Data: []byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n")},
		{Name: "var/lib/dpkg/status", Data: []byte(dpkgStatus)},
		{Name: "lib/apk/db/installed", Data: []byte(apkInstalled)},
		{Name: "usr/lib/node_modules/gone/package.json", Data: []byte(`{"name":"gone","version":"1.0.0"}`)},
		{Name: "opt/py/lib/old-1.0.dist-info/METADATA", Data: []byte("Name: old\nVersion: 1.0\n")},
	})
	l2 := TarLayer(t, []File{
		{Name: "app/node_modules/left-pad/package.json", Data: []byte(`{"name":"left-pad","version":"1.1.0","license":"WTFPL"}`)},
		{Name: "app/node_modules/@acme/util/package.json", Data: []byte(`{"name":"@acme/util","version":"2.0.0-beta.1","license":{"type":"MIT"}}`)},
		{Name: "app/node_modules/left-pad/lib/package.json", Data: []byte(`{"name":"not-a-package","version":"9.9.9"}`)},
		{Name: "usr/lib/python3/dist-packages/Flask_Login-0.6.3.dist-info/METADATA", Data: []byte("Metadata-Version: 2.1\nName: Flask_Login\nVersion: 0.6.3\nLicense: MIT\n\nName: body\n")},
		{Name: "usr/lib/node_modules/.wh.gone"},
		{Name: "opt/py/.wh..wh..opq"},
	})
	l3 := TarLayer(t, []File{{Name: "usr/local/bin/tool", Data: bin, Mode: 0o755}})
	return []Layer{
		{ocispec.MediaTypeImageLayerGzip, Gzip(t, l1)},
		{ocispec.MediaTypeImageLayerZstd, Zstd(t, l2)},
		{ocispec.MediaTypeImageLayer, l3},
	}
}
