// Command seed pushes small generated images into a registry on 127.0.0.1,
// standing in for the connected side's upstream registries in the demo and
// benchmarks (this machine has no route to public registries).
//
//	go run ./hack/seed --registry 127.0.0.1:5000 --repo demo/web:1.0 --repo demo/cache:1.0
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

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
		list      repos
	)
	flag.Var(&list, "repo", "repository:tag to push (repeatable)")
	flag.Parse()
	if len(list) == 0 {
		fmt.Fprintln(os.Stderr, "seed: name at least one --repo")
		os.Exit(2)
	}
	baseLayer := layer("base", *base<<10)
	for _, r := range list {
		if err := push(*reg+"/"+r, baseLayer, *own<<10, *multiarch); err != nil {
			fmt.Fprintf(os.Stderr, "seed: %s: %v\n", r, err)
			os.Exit(1)
		}
		fmt.Println(*reg + "/" + r)
	}
}

// layer makes a deterministic pseudo-random tar.gz-typed layer from seed.
func layer(seed string, size int) v1.Layer {
	h := sha256.Sum256([]byte(seed))
	rng := rand.New(rand.NewChaCha8(h))
	buf := make([]byte, size)
	for i := 0; i+8 <= len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
	}
	return static.NewLayer(buf, types.OCILayer)
}

func image(ref string, base v1.Layer, own int, arch string) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, base, layer(ref+arch, own))
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

func push(ref string, base v1.Layer, own int, multiarch bool) error {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return err
	}
	if !multiarch {
		img, err := image(ref, base, own, "amd64")
		if err != nil {
			return err
		}
		return remote.Write(tag, img)
	}
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := image(ref, base, own, arch)
		if err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return remote.WriteIndex(tag, idx)
}
