package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/internal/oci"
)

// ImageOptions configure PushImage.
type ImageOptions struct {
	// Executable is the static Linux binary to carry; empty means the
	// running skiff.
	Executable string
	// Target is HOST[:PORT]/REPOSITORY:TAG to push to.
	Target string
	Remote oci.RemoteOptions
}

// ImageResult is the pushed image.
type ImageResult struct {
	// Ref is Target's repository pinned by the manifest digest.
	Ref    string
	Digest digest.Digest
	Size   int64
}

// PushImage makes the agent's image from a static executable, one layer
// holding /skiff and nothing else (no base image to carry), and pushes it.
func PushImage(ctx context.Context, o ImageOptions) (*ImageResult, error) {
	exe := o.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	arch, err := staticArch(exe)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		return nil, err
	}
	layer, diffID, err := layerOf(bin)
	if err != nil {
		return nil, err
	}
	store := memory.New()
	put := func(mt string, b []byte) (ocispec.Descriptor, error) {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		return d, store.Push(ctx, d, bytes.NewReader(b))
	}
	layerDesc, err := put(ocispec.MediaTypeImageLayerGzip, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		Config:   ocispec.ImageConfig{Entrypoint: []string{"/skiff"}, User: "65532:65532"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	})
	if err != nil {
		return nil, err
	}
	cfgDesc, err := put(ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return nil, err
	}
	man, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfgDesc, Layers: []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return nil, err
	}
	manDesc, err := put(ocispec.MediaTypeImageManifest, man)
	if err != nil {
		return nil, err
	}
	if _, err := oci.Push(ctx, store, []oci.PushImage{{Descriptor: manDesc, Target: o.Target}}, oci.PushOptions{RemoteOptions: o.Remote}); err != nil {
		return nil, fmt.Errorf("pushing the agent image: %w", err)
	}
	host, repo, _, err := oci.SplitRef(o.Target)
	if err != nil {
		return nil, err
	}
	return &ImageResult{Ref: host + "/" + repo + "@" + manDesc.Digest.String(), Digest: manDesc.Digest, Size: layerDesc.Size + cfgDesc.Size + manDesc.Size}, nil
}

// staticArch checks that exe is a statically linked Linux ELF executable
// and returns its OCI architecture.
func staticArch(exe string) (string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return "", fmt.Errorf("%s is not a Linux executable (%v): the agent image needs skiff built for Linux", exe, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked: the agent image has no base image with a C library; build skiff with CGO_ENABLED=0 (make build)", exe)
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_386:
		return "386", nil
	case elf.EM_ARM:
		return "arm", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	}
	return "", fmt.Errorf("%s: unsupported machine %s", exe, f.Machine)
}

// layerOf packs bin as /skiff into a deterministic tar+gzip layer and
// returns it with the digest of the uncompressed tar.
func layerOf(bin []byte) ([]byte, digest.Digest, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, "", err
	}
	dg := digest.Canonical.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, dg.Hash()))
	if err := tw.WriteHeader(&tar.Header{Name: "skiff", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return nil, "", err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, "", err
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), dg.Digest(), nil
}
