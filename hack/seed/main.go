// Command seed pushes generated images into a registry on 127.0.0.1,
// standing in for the connected side's upstream registries in the demo and
// benchmarks (this machine has no route to public registries).
//
//	go run ./hack/seed --registry 127.0.0.1:5000 --repo demo/web:1.0 --repo demo/cache:1.0
//
// Every image is a shared base layer plus a layer of its own. With --data
// random (the default) layers are pseudo-random bytes, labelled honestly as
// uncompressed layers (they are not gzip, and compress to nothing). With
// --data files they are real tar archives of the regular files under
// --files-root (sorted by path, fixed metadata), uncompressed, or gzip-
// compressed with --gzip: layers like those of real images.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type repos []string

func (r *repos) String() string     { return strings.Join(*r, ",") }
func (r *repos) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	var (
		reg       = flag.String("registry", "127.0.0.1:5000", "registry host:port (plain HTTP)")
		base      = flag.Int("base-kib", 512, "size of the shared base layer in KiB")
		own       = flag.Int("layer-kib", 128, "size of each image's own layer in KiB")
		multiarch = flag.Bool("multiarch", false, "push a linux/amd64+linux/arm64 index for each repo")
		data      = flag.String("data", "random", "layer content: random (pseudo-random bytes) or files (tar of real files)")
		root      = flag.String("files-root", "/usr", "with --data files: the directory whose files fill the layers")
		gz        = flag.Bool("gzip", false, "with --data files: gzip the layers")
		list      repos
	)
	flag.Var(&list, "repo", "repository:tag to push (repeatable)")
	flag.Parse()
	if len(list) == 0 {
		fmt.Fprintln(os.Stderr, "seed: name at least one --repo")
		os.Exit(2)
	}
	var mk func(seed string, size int) (v1.Layer, error)
	switch *data {
	case "random":
		mk = func(seed string, size int) (v1.Layer, error) { return randomLayer(seed, size), nil }
	case "files":
		fs, err := newFileSource(*root)
		if err != nil {
			fmt.Fprintf(os.Stderr, "seed: %v\n", err)
			os.Exit(1)
		}
		mk = func(_ string, size int) (v1.Layer, error) { return fs.layer(size, *gz) }
	default:
		fmt.Fprintf(os.Stderr, "seed: --data %q: use random or files\n", *data)
		os.Exit(2)
	}
	baseLayer, err := mk("base", *base<<10)
	if err != nil {
		fmt.Fprintf(os.Stderr, "seed: base layer: %v\n", err)
		os.Exit(1)
	}
	for _, r := range list {
		if err := push(*reg+"/"+r, baseLayer, *own<<10, *multiarch, mk); err != nil {
			fmt.Fprintf(os.Stderr, "seed: %s: %v\n", r, err)
			os.Exit(1)
		}
		fmt.Println(*reg + "/" + r)
	}
}

// randomLayer makes a deterministic pseudo-random layer from seed, typed
// as an uncompressed layer: the bytes are not gzip, so no tool is misled
// into recompressing them.
func randomLayer(seed string, size int) v1.Layer {
	h := sha256.Sum256([]byte(seed))
	rng := rand.New(rand.NewChaCha8(h))
	buf := make([]byte, size)
	for i := 0; i+8 <= len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
	}
	return static.NewLayer(buf, types.OCIUncompressedLayer)
}

// fileSource hands out the regular files under a directory, in path
// order, each file to one layer only.
type fileSource struct {
	root  string
	files []string
	next  int
}

func newFileSource(root string) (*fileSource, error) {
	s := &fileSource{root: root}
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: leave it out
		}
		if d.Type().IsRegular() {
			s.files = append(s.files, p)
		}
		return nil
	})
	sort.Strings(s.files)
	return s, err
}

// layer packs the next files into a tar of about size bytes (fixed
// owners, modes and times), gzipped when gz is set.
func (s *fileSource) layer(size int, gz bool) (v1.Layer, error) {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	written := 0
	for written < size {
		if s.next >= len(s.files) {
			return nil, fmt.Errorf("%s holds too few files for the layers asked for: lower the sizes or choose a larger --files-root", s.root)
		}
		p := s.files[s.next]
		s.next++
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		rel, _ := filepath.Rel(s.root, p)
		h := &tar.Header{Typeflag: tar.TypeReg, Name: filepath.ToSlash(rel), Size: int64(len(b)), Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
		written += len(b) + 512
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	mt := types.OCIUncompressedLayer
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, err
		}
		mt = types.OCILayer
	}
	return static.NewLayer(buf.Bytes(), mt), nil
}

func image(ref string, base, own v1.Layer, arch string) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, base, own)
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Labels = map[string]string{"dev.skiff.seed": ref}
	return mutate.ConfigFile(img, cf)
}

func push(ref string, base v1.Layer, size int, multiarch bool, mk func(string, int) (v1.Layer, error)) error {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return err
	}
	if !multiarch {
		own, err := mk(ref+"amd64", size)
		if err != nil {
			return err
		}
		img, err := image(ref, base, own, "amd64")
		if err != nil {
			return err
		}
		return remote.Write(tag, img)
	}
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		own, err := mk(ref+arch, size)
		if err != nil {
			return err
		}
		img, err := image(ref, base, own, arch)
		if err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return remote.WriteIndex(tag, idx)
}
