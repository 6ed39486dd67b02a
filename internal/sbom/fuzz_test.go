package sbom

import (
	"bytes"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func FuzzCatalogDpkgStatus(f *testing.F) {
	f.Add([]byte("Package: a\nVersion: 1.0\nStatus: install ok installed\n\nPackage: b\nVersion: 1:2.0-1\n"))
	f.Add([]byte("Package: a\n continuation\nVersion:\n\n\n:\n"))
	f.Add([]byte("P:musl\nV:1.2.4-r2\nA:x86_64\n"))
	f.Add([]byte{0, 0xff, '\n', ' '})
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := catalogDpkg(bytes.NewReader(data))
		if err == nil {
			for _, p := range pkgs {
				if p.name == "" || p.version == "" {
					t.Fatalf("package without name or version: %+v", p)
				}
			}
		}
		catalogApk(bytes.NewReader(data))
		catalogPython(bytes.NewReader(data))
		catalogNpm(data)
		parseOSRelease(data)
	})
}

func FuzzLayer(f *testing.F) {
	f.Add([]byte("not a tar"))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newScanner(Options{TempDir: t.TempDir()})
		defer s.close()
		ls, err := s.scan(t.Context(), bytes.NewReader(data))
		if err != nil {
			return
		}
		l := ocispec.Descriptor{Digest: "sha256:00"}
		compose([]ocispec.Descriptor{l}, map[digest.Digest]*layerScan{l.Digest: ls}, "sha256:00", Options{})
	})
}
