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
//
// With --runnable the images really run on a node: the shared base layer is
// the host's static busybox (Debian's busybox-static) with its applet
// links, each image's own layer holds /etc/demo-image naming it, and the
// entrypoint serves that file with busybox httpd on port 8080 (a command
// in the pod spec overrides it).
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
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
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
		runnable  = flag.Bool("runnable", false, "images that run: /bin/busybox serving /etc/demo-image on :8080")
		list      repos
	)
	flag.Var(&list, "repo", "repository:tag to push (repeatable)")
	flag.Parse()
	if len(list) == 0 {
		fmt.Fprintln(os.Stderr, "seed: name at least one --repo")
		os.Exit(2)
	}
	if *runnable {
		if err := pushRunnable(*reg, list); err != nil {
			fmt.Fprintf(os.Stderr, "seed: %v\n", err)
			os.Exit(1)
		}
		return
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
	cw := &countWriter{w: w}
	tw := tar.NewWriter(cw)
	for cw.n < size {
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

// countWriter counts the bytes of tar written, before compression.
type countWriter struct {
	w io.Writer
	n int
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
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

// pushRunnable pushes a busybox image per repo (see the package comment).
func pushRunnable(reg string, list []string) error {
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("%w: apt-get install busybox-static", err)
	}
	out, err := exec.Command("/bin/busybox", "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	base := map[string]string{"bin/busybox": string(bin)}
	for _, a := range strings.Fields(string(out)) {
		if a != "bin/busybox" {
			base[a] = "->/bin/busybox"
		}
	}
	baseLayer, err := tarLayer(base)
	if err != nil {
		return err
	}
	for _, r := range list {
		own, err := tarLayer(map[string]string{"etc/demo-image": r + "\n"})
		if err != nil {
			return err
		}
		img, err := mutate.AppendLayers(empty.Image, baseLayer, own)
		if err != nil {
			return err
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", runtime.GOARCH
		cf.Config.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		// sh stays PID 1 and exits on TERM (httpd as PID 1 would ignore it)
		cf.Config.Entrypoint = []string{"/bin/sh", "-c", "trap 'exit 0' TERM; mkdir -p /www && cp /etc/demo-image /www/index.html && httpd -f -p 8080 -h /www & wait"}
		cf.Config.Labels = map[string]string{"dev.skiff.seed": r}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return err
		}
		tag, err := name.NewTag(reg+"/"+r, name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(tag, img); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
		fmt.Println(reg + "/" + r)
	}
	return nil
}

// tarLayer makes an uncompressed, reproducible layer; a content starting
// with "->" is a symbolic link to the rest.
func tarLayer(files map[string]string) (v1.Layer, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := map[string]bool{}
	epoch := time.Unix(0, 0)
	for _, n := range names {
		for d := path.Dir(n); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	ds := make([]string, 0, len(dirs))
	for d := range dirs {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	for _, d := range ds {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		c := files[n]
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: n, Linkname: target, Mode: 0o777, ModTime: epoch}); err != nil {
				return nil, err
			}
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o755, Size: int64(len(c)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(c)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return static.NewLayer(b.Bytes(), types.OCIUncompressedLayer), nil
}
