package oci

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/registry"
)

func init() {
	// Keep retry tests fast.
	retryBackoff = 5 * time.Millisecond
	retryMaxWait = 50 * time.Millisecond
}

// registries returns the registries Push tests run against: the embedded
// one always, Debian's docker-registry when available.
func registries(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"embedded":        func(t *testing.T) string { return fixture.Registry(t) },
		"docker-registry": func(t *testing.T) string { return fixture.DockerRegistry(t) },
	}
}

// unique makes repository names that do not collide on a long-lived
// registry.
func unique(t *testing.T, name string) string {
	return fmt.Sprintf("%s/%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), name, time.Now().UnixNano())
}

func memImage(t *testing.T, o fixture.ImageOptions) (*memory.Store, ocispec.Descriptor) {
	t.Helper()
	s := memory.New()
	return s, fixture.BuildImage(t, s, o)
}

// graph returns every digest and size reachable from root in f.
func graph(t *testing.T, f content.Fetcher, root ocispec.Descriptor) map[digest.Digest]int64 {
	t.Helper()
	out := map[digest.Digest]int64{}
	var walk func(d ocispec.Descriptor)
	walk = func(d ocispec.Descriptor) {
		out[d.Digest] = d.Size
		children, err := content.Successors(context.Background(), f, d)
		if err != nil {
			t.Fatalf("walking %s: %v", d.Digest, err)
		}
		for _, c := range children {
			walk(c)
		}
	}
	walk(root)
	return out
}

func blobCount(t *testing.T, f content.Fetcher, root ocispec.Descriptor) (n int, size int64) {
	t.Helper()
	seen := map[digest.Digest]bool{}
	var walk func(d ocispec.Descriptor)
	walk = func(d ocispec.Descriptor) {
		if seen[d.Digest] {
			return
		}
		seen[d.Digest] = true
		if !isManifest(d.MediaType) {
			n++
			size += d.Size
			return
		}
		children, err := content.Successors(context.Background(), f, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range children {
			walk(c)
		}
	}
	walk(root)
	return n, size
}

func ociStore(t *testing.T) *oci.Store {
	t.Helper()
	s, err := oci.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// events records progress events.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) count(k EventKind, d digest.Digest) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Kind == k && (d == "" || ev.Digest == d) {
			n++
		}
	}
	return n
}

func TestPullSingle(t *testing.T) {
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			ref := reg(t) + "/" + unique(t, "lib/app") + ":1.0"
			want := fixture.PushImage(t, ref, fixture.ImageOptions{Layers: []int{1000, 2000}, Seed: 1})
			dst := ociStore(t)
			imgs, err := Pull(t.Context(), []string{ref}, dst, PullOptions{Platforms: []string{"linux/amd64"}})
			if err != nil {
				t.Fatal(err)
			}
			img := imgs[0]
			if img.Ref != ref || img.Descriptor.Digest != want.Digest || img.SourceDigest != "" {
				t.Fatalf("image = %+v, want digest %s", img, want.Digest)
			}
			if !slices.Equal(img.Platforms, []string{"linux/amd64"}) {
				t.Fatalf("platforms = %v", img.Platforms)
			}
			if n := len(graph(t, dst, img.Descriptor)); n != 4 {
				t.Fatalf("pulled graph has %d nodes, want 4", n)
			}
			got, err := dst.Resolve(t.Context(), img.Ref)
			if err != nil || got.Digest != want.Digest {
				t.Fatalf("tag in store: %v %v", got.Digest, err)
			}
		})
	}
}

func TestPullMultiArch(t *testing.T) {
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) { testPullMultiArch(t, reg(t)+"/"+unique(t, "m")) })
	}
}

func testPullMultiArch(t *testing.T, host string) {
	all := []string{"linux/amd64", "linux/arm64/v8", "linux/s390x"}
	oci := fixture.PushImage(t, host+"/multi:1", fixture.ImageOptions{Layers: []int{500}, Platforms: all, Seed: 2})
	docker := fixture.PushImage(t, host+"/docker:1", fixture.ImageOptions{Layers: []int{500}, Platforms: all, Seed: 3, Docker: true})
	fixture.PushImage(t, host+"/single:1", fixture.ImageOptions{Layers: []int{500}, Seed: 4})

	tests := []struct {
		name      string
		ref       string
		src       ocispec.Descriptor
		platforms []string
		want      []string // platforms kept
		filtered  bool
		err       error
		errText   string
	}{
		{name: "all", ref: "/multi:1", src: oci, want: all},
		{name: "explicit all", ref: "/multi:1", src: oci, platforms: all, want: all},
		{name: "one", ref: "/multi:1", src: oci, platforms: []string{"linux/arm64"}, want: []string{"linux/arm64/v8"}, filtered: true},
		{name: "two", ref: "/multi:1", src: oci, platforms: []string{"linux/s390x", "linux/amd64"}, want: []string{"linux/amd64", "linux/s390x"}, filtered: true},
		{name: "docker list", ref: "/docker:1", src: docker, platforms: []string{"linux/amd64"}, want: []string{"linux/amd64"}, filtered: true},
		{name: "docker all", ref: "/docker:1", src: docker, want: all},
		{name: "none match", ref: "/multi:1", platforms: []string{"windows/amd64"}, err: ErrNoPlatform, errText: "linux/amd64, linux/arm64/v8, linux/s390x"},
		{name: "variant mismatch", ref: "/multi:1", platforms: []string{"linux/arm64/v9"}, err: ErrNoPlatform},
		{name: "single mismatch", ref: "/single:1", platforms: []string{"linux/arm64"}, err: ErrNoPlatform, errText: "linux/amd64 only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := ociStore(t)
			imgs, err := Pull(t.Context(), []string{host + tt.ref}, dst, PullOptions{Platforms: tt.platforms})
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.errText) || !strings.Contains(err.Error(), tt.ref) {
					t.Fatalf("err = %v, want %v containing %q and the image", err, tt.err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			img := imgs[0]
			if !slices.Equal(img.Platforms, tt.want) {
				t.Errorf("platforms = %v, want %v", img.Platforms, tt.want)
			}
			if img.Descriptor.MediaType != tt.src.MediaType {
				t.Errorf("media type = %s, want %s (kept as-is)", img.Descriptor.MediaType, tt.src.MediaType)
			}
			if !tt.filtered {
				if img.Descriptor.Digest != tt.src.Digest || img.SourceDigest != "" {
					t.Fatalf("unfiltered image changed: %+v", img)
				}
				return
			}
			if img.SourceDigest != tt.src.Digest || img.Descriptor.Digest == tt.src.Digest {
				t.Fatalf("filtered image: source %s root %s, want source %s and a new root", img.SourceDigest, img.Descriptor.Digest, tt.src.Digest)
			}
			raw, err := content.FetchAll(t.Context(), dst, img.Descriptor)
			if err != nil {
				t.Fatal(err)
			}
			var idx ocispec.Index
			if err := json.Unmarshal(raw, &idx); err != nil {
				t.Fatal(err)
			}
			if len(idx.Manifests) != len(tt.want) {
				t.Fatalf("new index has %d manifests, want %d", len(idx.Manifests), len(tt.want))
			}
			// Every manifest the new index names is in the store, and
			// dropped platforms' blobs are not.
			g := graph(t, dst, img.Descriptor)
			if len(g) != 1+3*len(tt.want) {
				t.Errorf("graph has %d nodes, want %d", len(g), 1+3*len(tt.want))
			}
			// Deterministic: a second pull gives the same new index.
			again, err := Pull(t.Context(), []string{host + tt.ref}, ociStore(t), PullOptions{Platforms: tt.platforms})
			if err != nil {
				t.Fatal(err)
			}
			if again[0].Descriptor.Digest != img.Descriptor.Digest {
				t.Fatalf("filtered index not deterministic: %s then %s", img.Descriptor.Digest, again[0].Descriptor.Digest)
			}
		})
	}
}

func TestPullSharedLayersOnce(t *testing.T) {
	host := fixture.Registry(t)
	base := [][]byte{[]byte(strings.Repeat("base layer ", 5000)), []byte(strings.Repeat("runtime ", 3000))}
	var refs []string
	for i := range 6 {
		ref := fmt.Sprintf("%s/app%d:v1", host, i)
		fixture.PushImage(t, ref, fixture.ImageOptions{Shared: base, Layers: []int{300}, Seed: int64(10 + i)})
		refs = append(refs, ref)
	}
	var ev events
	dst := ociStore(t)
	imgs, err := Pull(t.Context(), refs, dst, PullOptions{Concurrency: 6, Progress: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != len(refs) {
		t.Fatalf("%d images", len(imgs))
	}
	for _, b := range base {
		d := digest.FromBytes(b)
		if n := ev.count(BlobStart, d); n != 1 {
			t.Errorf("shared layer %s fetched %d times, want 1", d, n)
		}
	}
	if n := ev.count(ImageDone, ""); n != len(refs) {
		t.Errorf("ImageDone events = %d, want %d", n, len(refs))
	}
	// 6 images × (manifest, config, own layer) + 2 shared layers.
	if n := ev.count(BlobStart, ""); n != 6*3+2 {
		t.Errorf("BlobStart events = %d, want %d", n, 6*3+2)
	}
	// Pulling again into the same store transfers nothing.
	var again events
	if _, err := Pull(t.Context(), refs, dst, PullOptions{Progress: again.add}); err != nil {
		t.Fatal(err)
	}
	if n := again.count(BlobStart, ""); n != 0 {
		t.Errorf("second pull started %d transfers", n)
	}
}

func TestPullErrors(t *testing.T) {
	host := fixture.Registry(t)
	fixture.PushImage(t, host+"/exists:1", fixture.ImageOptions{Seed: 5})
	closed := closedAddr(t)
	authHost := authRegistry(t).Addr()

	tests := []struct {
		name string
		ref  string
		err  error
		text string
	}{
		{"missing tag", host + "/exists:2", ErrNotFound, "image not found"},
		{"missing repo", host + "/nope:1", ErrNotFound, "check the name"},
		{"unreachable", closed + "/x:1", ErrUnreachable, "check the address, --registry-mirror, or HTTPS_PROXY"},
		{"unauthorized", authHost + "/x:1", ErrUnauthorized, "docker login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Pull(t.Context(), []string{tt.ref}, ociStore(t), PullOptions{})
			t.Log(err)
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), tt.ref) {
				t.Fatalf("err = %v\nwant %v mentioning %q and %q", err, tt.err, tt.text, tt.ref)
			}
		})
	}
	t.Run("bad platform", func(t *testing.T) {
		if _, err := Pull(t.Context(), []string{host + "/exists:1"}, ociStore(t), PullOptions{Platforms: []string{"linux"}}); err == nil {
			t.Fatal("bad platform accepted")
		}
	})
	t.Run("bad ref", func(t *testing.T) {
		if _, err := Pull(t.Context(), []string{"UPPER/Case"}, ociStore(t), PullOptions{}); err == nil {
			t.Fatal("bad reference accepted")
		}
	})
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const (
	testUser = "alice"
	testPass = "s3cret"
)

func authRegistry(t *testing.T) *registry.Server {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(testUser+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fixture.StartRegistry(t, registry.Options{Htpasswd: htpasswd})
}

func TestPush(t *testing.T) {
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			host := reg(t)
			tests := []struct {
				name string
				o    fixture.ImageOptions
			}{
				{"oci", fixture.ImageOptions{Layers: []int{4096, 70000, 10}, Seed: 20}},
				{"docker", fixture.ImageOptions{Layers: []int{2048, 100}, Seed: 21, Docker: true}},
				{"multi-arch", fixture.ImageOptions{Layers: []int{1024}, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 22}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					src, root := memImage(t, tt.o)
					target := host + "/" + unique(t, "a/b/c/repo") + ":v1"
					blobs, size := blobCount(t, src, root)
					var ev events
					res, err := Push(t.Context(), src, []PushImage{{Descriptor: root, Target: target}}, PushOptions{Progress: ev.add})
					if err != nil {
						t.Fatal(err)
					}
					if res.BlobsPushed != blobs || res.BytesPushed != size || res.BlobsSkipped != 0 {
						t.Fatalf("first push %+v, want %d blobs / %d bytes pushed", *res, blobs, size)
					}
					if ev.count(ImageDone, root.Digest) != 1 {
						t.Errorf("no ImageDone event")
					}
					// The registry holds the same digest under the tag.
					imgs, err := Pull(t.Context(), []string{target}, memory.New(), PullOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if imgs[0].Descriptor.Digest != root.Digest {
						t.Fatalf("pulled %s, pushed %s", imgs[0].Descriptor.Digest, root.Digest)
					}
					// A second push moves no blob bytes.
					res, err = Push(t.Context(), src, []PushImage{{Descriptor: root, Target: target}}, PushOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if res.BytesPushed != 0 || res.BlobsPushed != 0 || res.BlobsSkipped != blobs || res.BytesSkipped != size {
						t.Fatalf("second push %+v, want nothing pushed and %d blobs skipped", *res, blobs)
					}
					// A new tag for the same image moves nothing either.
					other := strings.TrimSuffix(target, ":v1") + ":v2"
					res, err = Push(t.Context(), src, []PushImage{{Descriptor: root, Target: other}}, PushOptions{})
					if err != nil || res.BytesPushed != 0 {
						t.Fatalf("retag push %+v, %v", res, err)
					}
				})
			}
		})
	}
}

func TestPushMount(t *testing.T) {
	for name, reg := range registries(t) {
		t.Run(name, func(t *testing.T) {
			host := reg(t)
			shared := []byte(strings.Repeat("shared base ", 20000))
			src := memory.New()
			a := fixture.BuildImage(t, src, fixture.ImageOptions{Shared: [][]byte{shared}, Layers: []int{1000}, Seed: 30})
			b := fixture.BuildImage(t, src, fixture.ImageOptions{Shared: [][]byte{shared}, Layers: []int{1000}, Seed: 31})
			c := fixture.BuildImage(t, src, fixture.ImageOptions{Shared: [][]byte{shared}, Layers: []int{1000}, Seed: 32})
			images := []PushImage{
				{Descriptor: a, Target: host + "/" + unique(t, "one") + ":1"},
				{Descriptor: b, Target: host + "/" + unique(t, "two") + ":1"},
				{Descriptor: c, Target: host + "/" + unique(t, "three") + ":1"},
			}
			var ev events
			res, err := Push(t.Context(), src, images, PushOptions{Progress: ev.add})
			if err != nil {
				t.Fatal(err)
			}
			d := digest.FromBytes(shared)
			if ev.count(BlobMounted, d) != 2 {
				t.Fatalf("%d mount events: want the shared layer mounted twice", ev.count(BlobMounted, d))
			}
			if n := ev.count(BlobStart, d); n != 1 {
				t.Fatalf("shared layer uploaded %d times, want 1", n)
			}
			// 3 × (config + own layer) + the shared layer once; the
			// shared layer counts as pushed, not also as mounted.
			if res.BlobsPushed != 7 || res.BlobsMounted != 0 {
				t.Fatalf("result %+v, want 7 blobs pushed, none counted as mounted", *res)
			}
			unique := int64(len(shared))
			for _, img := range []ocispec.Descriptor{a, b, c} {
				_, size := blobCount(t, src, img)
				unique += size - int64(len(shared))
			}
			if res.BytesPushed != unique {
				t.Fatalf("bytes pushed = %d, want %d (each blob once)", res.BytesPushed, unique)
			}
			// Again: everything is skipped, each blob counted once although
			// the shared layer is in three repositories.
			res, err = Push(t.Context(), src, images, PushOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.BlobsSkipped != 7 || res.BytesSkipped != unique || res.BlobsPushed != 0 {
				t.Fatalf("second push %+v, want 7 blobs / %d bytes skipped", *res, unique)
			}
			for _, img := range images {
				if _, err := Pull(t.Context(), []string{img.Target}, memory.New(), PullOptions{}); err != nil {
					t.Fatalf("pulling back %s: %v", img.Target, err)
				}
			}
		})
	}
}

func TestPushSameBlobSameRepo(t *testing.T) {
	host := fixture.Registry(t)
	shared := []byte(strings.Repeat("same repo ", 10000))
	src := memory.New()
	repo := host + "/" + unique(t, "repo")
	var images []PushImage
	for i := range 4 {
		d := fixture.BuildImage(t, src, fixture.ImageOptions{Shared: [][]byte{shared}, Layers: []int{100}, Seed: int64(40 + i)})
		images = append(images, PushImage{Descriptor: d, Target: fmt.Sprintf("%s:%d", repo, i)})
	}
	res, err := Push(t.Context(), src, images, PushOptions{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	// The shared layer is uploaded once; the others find it in the repo.
	if res.BlobsPushed != 4*2+1 || res.BlobsMounted != 0 {
		t.Fatalf("result %+v, want 9 blobs pushed and no mounts", *res)
	}
}

func TestPushTargetErrors(t *testing.T) {
	src, root := memImage(t, fixture.ImageOptions{Seed: 50})
	host := fixture.Registry(t)
	tests := []struct {
		name, target string
		err          error
		text         string
	}{
		{"bad target", "not a target", nil, "push target"},
		{"wrong digest", host + "/x@sha256:" + strings.Repeat("a", 64), nil, "names digest"},
		{"unreachable", closedAddr(t) + "/x:1", ErrUnreachable, "check the address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Push(t.Context(), src, []PushImage{{Descriptor: root, Target: tt.target}}, PushOptions{RemoteOptions: RemoteOptions{Retries: -1}})
			if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.err, tt.text)
			}
		})
	}
	t.Run("incomplete source", func(t *testing.T) {
		partial := memory.New()
		// Only the manifest: its config and layers are missing.
		raw, err := content.FetchAll(t.Context(), src, root)
		if err != nil {
			t.Fatal(err)
		}
		if err := partial.Push(t.Context(), root, strings.NewReader(string(raw))); err != nil {
			t.Fatal(err)
		}
		_, err = Push(t.Context(), partial, []PushImage{{Descriptor: root, Target: host + "/partial:1"}}, PushOptions{})
		if err == nil || !strings.Contains(err.Error(), "source is incomplete") {
			t.Fatalf("err = %v, want a source error", err)
		}
	})
}

func writeDockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	cfg := map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))},
	}}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuth(t *testing.T) {
	host := authRegistry(t).Addr()
	src, root := memImage(t, fixture.ImageOptions{Layers: []int{1000}, Seed: 60})
	tests := []struct {
		name string
		o    RemoteOptions
		err  error
	}{
		{"docker config", RemoteOptions{DockerConfig: writeDockerConfig(t, host, testUser, testPass)}, nil},
		{"docker config directory", RemoteOptions{DockerConfig: filepath.Dir(writeDockerConfig(t, host, testUser, testPass))}, nil},
		{"username", RemoteOptions{Username: testUser, Password: testPass}, nil},
		{"wrong password", RemoteOptions{DockerConfig: writeDockerConfig(t, host, testUser, "nope")}, ErrUnauthorized},
		{"no credentials", RemoteOptions{DockerConfig: filepath.Join(t.TempDir(), "missing.json")}, ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := host + "/" + unique(t, "auth") + ":1"
			_, err := Push(t.Context(), src, []PushImage{{Descriptor: root, Target: target}}, PushOptions{RemoteOptions: tt.o})
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), "docker login") || !strings.Contains(err.Error(), "--docker-config") {
					t.Fatalf("err = %v, want %v with a docker login and --docker-config hint", err, tt.err)
				}
				// The hint names the file actually read, and no flag that does not exist.
				if want := DockerConfigPath(tt.o); !strings.Contains(err.Error(), "looked up in "+want) || strings.Contains(err.Error(), "--username") {
					t.Fatalf("err = %v, want it to name %s and no --username flag", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			imgs, err := Pull(t.Context(), []string{target}, memory.New(), PullOptions{RemoteOptions: tt.o})
			if err != nil || imgs[0].Descriptor.Digest != root.Digest {
				t.Fatalf("pull back: %v", err)
			}
			repos, err := Catalog(t.Context(), host, tt.o)
			if err != nil || len(repos) == 0 {
				t.Fatalf("catalog with auth: %v %v", repos, err)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	srv := fixture.StartRegistry(t, registry.Options{SelfSigned: true})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	https, err := endpoint.Parse("https://" + srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	src, root := memImage(t, fixture.ImageOptions{Layers: []int{1000}, Seed: 70})
	tests := []struct {
		name string
		o    RemoteOptions
		err  error
	}{
		// A CA file or --insecure-registry means TLS even on loopback.
		{"ca file", RemoteOptions{CAFile: ca}, nil},
		{"insecure", RemoteOptions{Insecure: []string{srv.Addr()}}, nil},
		{"https address with ca file", RemoteOptions{CAFile: ca}.WithAddress(https), nil},
		{"untrusted", RemoteOptions{}.WithAddress(https), ErrTLS},
		{"plain http to https", RemoteOptions{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := srv.Addr() + "/" + unique(t, "tls") + ":1"
			_, err := Push(t.Context(), src, []PushImage{{Descriptor: root, Target: target}}, PushOptions{RemoteOptions: tt.o, Concurrency: 1})
			if tt.name == "plain http to https" {
				// Plain HTTP against a TLS port fails with a clear error.
				if err == nil {
					t.Fatal("plain HTTP to a TLS registry succeeded")
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), "--ca-file") {
				t.Fatalf("err = %v, want a --ca-file hint", err)
			}
		})
	}
}

func TestRemotePlainHTTP(t *testing.T) {
	must := func(s string) endpoint.Address {
		a, err := endpoint.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name string
		o    RemoteOptions
		host string
		want bool
	}{
		{"loopback", RemoteOptions{}, "127.0.0.1:5000", true},
		{"localhost", RemoteOptions{}, "localhost:5000", true},
		{"ipv6 loopback", RemoteOptions{}, "[::1]:5000", true},
		{"remote", RemoteOptions{}, "registry.example", false},
		{"https address on loopback", RemoteOptions{}.WithAddress(must("https://127.0.0.1:5000")), "127.0.0.1:5000", false},
		{"HTTPS upper case", RemoteOptions{}.WithAddress(must("HTTPS://LOCALHOST:5000")), "localhost:5000", false},
		{"https address, other port", RemoteOptions{}.WithAddress(must("https://127.0.0.1:5000")), "127.0.0.1:5001", true},
		{"http address remote", RemoteOptions{}.WithAddress(must("http://registry.example/mirror")), "registry.example", true},
		{"http address with ca file", RemoteOptions{CAFile: "ca.pem"}.WithAddress(must("http://127.0.0.1:5000")), "127.0.0.1:5000", true},
		{"no scheme, ca file", RemoteOptions{CAFile: "ca.pem"}, "127.0.0.1:5000", false},
		{"no scheme, insecure host:port", RemoteOptions{Insecure: []string{"127.0.0.1:5000"}}, "127.0.0.1:5000", false},
		{"no scheme, insecure host", RemoteOptions{Insecure: []string{"localhost"}}, "localhost:5000", false},
		{"no scheme, other host insecure", RemoteOptions{Insecure: []string{"registry.example"}}, "127.0.0.1:5000", true},
		{"without scheme unchanged", RemoteOptions{}.WithAddress(must("127.0.0.1:5000")), "127.0.0.1:5000", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.PlainHTTP(tc.host); got != tc.want {
				t.Fatalf("PlainHTTP(%q) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
	// WithAddress copies Schemes: the original options are unchanged.
	base := RemoteOptions{Schemes: map[string]string{"a.example": endpoint.HTTP}}
	_ = base.WithAddress(must("https://127.0.0.1:5000"))
	if len(base.Schemes) != 1 {
		t.Fatalf("WithAddress changed the original Schemes: %v", base.Schemes)
	}
}

func TestMirror(t *testing.T) {
	host := fixture.Registry(t)
	want := fixture.PushImage(t, host+"/mirror/library/nginx:1.27", fixture.ImageOptions{Layers: []int{100}, Seed: 80})
	want2 := fixture.PushImage(t, host+"/quay/org/tool:v2", fixture.ImageOptions{Layers: []int{100}, Seed: 81})
	mirrors := map[string]string{"docker.io": host + "/mirror", "quay.io": host + "/quay/"}
	imgs, err := Pull(t.Context(), []string{"nginx:1.27", "quay.io/org/tool:v2"}, memory.New(), PullOptions{RemoteOptions: RemoteOptions{Mirrors: mirrors}})
	if err != nil {
		t.Fatal(err)
	}
	if imgs[0].Ref != "docker.io/library/nginx:1.27" || imgs[0].Descriptor.Digest != want.Digest {
		t.Fatalf("image 0 = %+v", imgs[0])
	}
	if imgs[1].Ref != "quay.io/org/tool:v2" || imgs[1].Descriptor.Digest != want2.Digest {
		t.Fatalf("image 1 = %+v", imgs[1])
	}
	_, err = Pull(t.Context(), []string{"nginx:missing"}, memory.New(), PullOptions{RemoteOptions: RemoteOptions{Mirrors: mirrors}})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "mirror of docker.io") {
		t.Fatalf("err = %v, want not found via the mirror", err)
	}
}

// flakyProxy forwards to the registry at host and answers 503 to the
// first n requests for which fail returns true.
func flakyProxy(t *testing.T, host string, n int32, fail func(*http.Request) bool) (addr string, failed *atomic.Int32) {
	t.Helper()
	u, _ := url.Parse("http://" + host)
	rp := httputil.NewSingleHostReverseProxy(u)
	failed = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail(r) && failed.Add(1) <= n {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), failed
}

func TestRetry(t *testing.T) {
	host := fixture.Registry(t)
	src, root := memImage(t, fixture.ImageOptions{Layers: []int{5000, 6000}, Seed: 90})
	any := func(*http.Request) bool { return true }
	blobPut := func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
	}
	tests := []struct {
		name    string
		n       int32
		fail    func(*http.Request) bool
		retries int
		wantErr bool
	}{
		{"first requests", 3, any, 0, false},
		{"blob uploads", 2, blobPut, 0, false},
		{"no retries", 1, any, -1, true},
		{"too many failures", 50, any, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy, failed := flakyProxy(t, host, tt.n, tt.fail)
			target := proxy + "/" + unique(t, "retry") + ":1"
			_, err := Push(t.Context(), src, []PushImage{{Descriptor: root, Target: target}}, PushOptions{RemoteOptions: RemoteOptions{Retries: tt.retries}})
			if tt.wantErr {
				if err == nil {
					t.Fatal("push succeeded despite failures")
				}
				if !strings.Contains(err.Error(), "503") {
					t.Fatalf("err = %v, want the 503", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("push through flaky proxy: %v", err)
			}
			if failed.Load() < tt.n {
				t.Fatalf("proxy failed only %d requests", failed.Load())
			}
			if _, err := Pull(t.Context(), []string{target}, memory.New(), PullOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPullRetry(t *testing.T) {
	host := fixture.Registry(t)
	want := fixture.PushImage(t, host+"/flaky:1", fixture.ImageOptions{Layers: []int{5000, 7000}, Seed: 91})
	blobGet := func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
	}
	proxy, failed := flakyProxy(t, host, 3, blobGet)
	imgs, err := Pull(t.Context(), []string{proxy + "/flaky:1"}, ociStore(t), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if imgs[0].Descriptor.Digest != want.Digest || failed.Load() < 3 {
		t.Fatalf("pulled %s after %d failures", imgs[0].Descriptor.Digest, failed.Load())
	}
}

func TestCatalogInventory(t *testing.T) {
	host := fixture.Registry(t)
	a := fixture.PushImage(t, host+"/team/a:1", fixture.ImageOptions{Layers: []int{100, 200}, Seed: 100})
	b := fixture.PushImage(t, host+"/b:1", fixture.ImageOptions{Layers: []int{300}, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 101})
	fixture.PushImage(t, host+"/b:2", fixture.ImageOptions{Layers: []int{300}, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 101})

	repos, err := Catalog(t.Context(), host, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(repos, []string{"b", "team/a"}) {
		t.Fatalf("catalog = %v", repos)
	}
	inv, err := Inventory(t.Context(), host, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[digest.Digest]int64{}
	for _, d := range []ocispec.Descriptor{a, b} {
		store := memory.New()
		if _, err := Pull(t.Context(), []string{host + "/team/a:1", host + "/b:1"}, store, PullOptions{}); err != nil {
			t.Fatal(err)
		}
		for k, v := range graph(t, store, d) {
			want[k] = v
		}
	}
	if len(inv) != len(want) {
		t.Fatalf("inventory has %d digests, want %d", len(inv), len(want))
	}
	for d, size := range want {
		if inv[d] != size {
			t.Errorf("inventory[%s] = %d, want %d", d, inv[d], size)
		}
	}
	if _, err := Catalog(t.Context(), closedAddr(t), RemoteOptions{Retries: -1}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("catalog of closed port: %v", err)
	}
}

// TestInventoryUntaggedRepository: a repository holding manifests but no
// tag yet (what another client's push of a multi-arch image passes
// through: platform manifests first, the tagged index last) is listed by
// the catalog while its tag list answers 404 name unknown. The inventory
// skips it rather than failing; nothing in it is reachable from a tag.
func TestInventoryUntaggedRepository(t *testing.T) {
	for name, start := range registries(t) {
		t.Run(name, func(t *testing.T) {
			host := start(t)
			tagged := unique(t, "tagged")
			a := fixture.PushImage(t, host+"/"+tagged+":1", fixture.ImageOptions{Layers: []int{100}, Seed: 110})
			src, d := memImage(t, fixture.ImageOptions{Layers: []int{200}, Seed: 111})
			repo, err := remote.NewRepository(host + "/" + unique(t, "untagged"))
			if err != nil {
				t.Fatal(err)
			}
			repo.PlainHTTP = true
			if err := oras.CopyGraph(t.Context(), src, repo, d, oras.DefaultCopyGraphOptions); err != nil {
				t.Fatal(err)
			}
			inv, err := Inventory(t.Context(), host, RemoteOptions{})
			if err != nil {
				t.Fatalf("inventory with an untagged repository: %v", err)
			}
			store := memory.New()
			if _, err := Pull(t.Context(), []string{host + "/" + tagged + ":1"}, store, PullOptions{}); err != nil {
				t.Fatal(err)
			}
			for dg, size := range graph(t, store, a) {
				if inv[dg] != size {
					t.Errorf("inventory[%s] = %d, want %d", dg, inv[dg], size)
				}
			}
			if _, ok := inv[d.Digest]; ok {
				t.Errorf("inventory holds the untagged manifest %s", d.Digest)
			}
		})
	}
}

// TestInventoryHalfWrittenTag: distribution writes a tag in two steps,
// its directory (listed by /tags/list at once) then its current link
// (read to resolve it). A tag listed but not yet resolvable, another
// client's push in progress, is skipped rather than failing the
// inventory.
func TestInventoryHalfWrittenTag(t *testing.T) {
	root := t.TempDir()
	host := fixture.StartRegistry(t, registry.Options{RootDir: root}).Addr()
	a := fixture.PushImage(t, host+"/app:1", fixture.ImageOptions{Layers: []int{100}, Seed: 120})
	if err := os.MkdirAll(filepath.Join(root, "storage/docker/registry/v2/repositories/app/_manifests/tags/2/index"), 0o755); err != nil {
		t.Fatal(err)
	}
	inv, err := Inventory(t.Context(), host, RemoteOptions{})
	if err != nil {
		t.Fatalf("inventory with a half-written tag: %v", err)
	}
	if _, ok := inv[a.Digest]; !ok || len(inv) != 3 {
		t.Fatalf("inventory = %v, want app:1's manifest, config and layer", inv)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nginx", "docker.io/library/nginx:latest"},
		{"nginx:1.27", "docker.io/library/nginx:1.27"},
		{"docker.io/bitnami/redis:7", "docker.io/bitnami/redis:7"},
		{"ghcr.io/org/app:v1", "ghcr.io/org/app:v1"},
		{"127.0.0.1:5000/a/b/c:1", "127.0.0.1:5000/a/b/c:1"},
		{"localhost/x", "localhost/x:latest"},
		{"quay.io/x/y@sha256:" + strings.Repeat("ab", 32), "quay.io/x/y@sha256:" + strings.Repeat("ab", 32)},
		{"x:1@sha256:" + strings.Repeat("ab", 32), "docker.io/library/x:1@sha256:" + strings.Repeat("ab", 32)},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "UPPER", "a b", "x:", "@sha256:12"} {
		if _, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) succeeded", bad)
		}
	}
}

func TestParseSourceMirror(t *testing.T) {
	tests := []struct {
		ref, host, repo, reference string
		mirrors                    map[string]string
	}{
		{"nginx", dockerHubAPI, "library/nginx", "latest", nil},
		{"nginx:1", "m:5000", "pre/fix/library/nginx", "1", map[string]string{"docker.io": "m:5000/pre/fix"}},
		{"ghcr.io/a/b:2", "m:5000", "a/b", "2", map[string]string{"ghcr.io": "m:5000"}},
		{"ghcr.io/a/b:2", "ghcr.io", "a/b", "2", map[string]string{"docker.io": "m:5000"}},
	}
	for _, tt := range tests {
		s, err := parseSource(tt.ref, tt.mirrors)
		if err != nil || s.host != tt.host || s.repo != tt.repo || s.reference != tt.reference {
			t.Errorf("parseSource(%q) = %+v, %v", tt.ref, s, err)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	good := map[string]ocispec.Platform{
		"linux/amd64":    {OS: "linux", Architecture: "amd64"},
		"linux/arm64/v8": {OS: "linux", Architecture: "arm64", Variant: "v8"},
	}
	for in, want := range good {
		got, err := ParsePlatform(in)
		if err != nil || got.OS != want.OS || got.Architecture != want.Architecture || got.Variant != want.Variant {
			t.Errorf("ParsePlatform(%q) = %+v, %v", in, got, err)
		}
		if FormatPlatform(got) != in {
			t.Errorf("FormatPlatform(%+v) = %q", got, FormatPlatform(got))
		}
	}
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "a/b/c/d"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) succeeded", bad)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"nginx", "a/b:c", "127.0.0.1:5000/x@sha256:" + strings.Repeat("0", 64), "::", "x:y:z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Normalize(s)
		if err != nil {
			return
		}
		again, err := Normalize(n)
		if err != nil || again != n {
			t.Fatalf("Normalize not idempotent: %q → %q → %q, %v", s, n, again, err)
		}
	})
}

func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "/", "a//b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		if err != nil {
			return
		}
		q, err := ParsePlatform(FormatPlatform(p))
		if err != nil || q.OS != p.OS || q.Architecture != p.Architecture || q.Variant != p.Variant {
			t.Fatalf("round trip of %q: %+v → %+v, %v", s, p, q, err)
		}
	})
}

func BenchmarkPush(b *testing.B) {
	host := fixture.Registry(b)
	src := memory.New()
	const mib = 1 << 20
	root := fixture.BuildImage(b, src, fixture.ImageOptions{Layers: []int{32 * mib, 16 * mib, 8 * mib, 8 * mib}, Seed: 1})
	_, size := blobCountB(b, src, root)
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		target := fmt.Sprintf("%s/bench%d:1", host, i)
		res, err := Push(b.Context(), src, []PushImage{{Descriptor: root, Target: target}}, PushOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if res.BytesPushed != size {
			b.Fatalf("pushed %d bytes, want %d", res.BytesPushed, size)
		}
	}
}

func blobCountB(b *testing.B, f content.Fetcher, root ocispec.Descriptor) (int, int64) {
	raw, err := content.FetchAll(context.Background(), f, root)
	if err != nil {
		b.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		b.Fatal(err)
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return len(m.Layers) + 1, size
}

// TestPushRepairsLostBlobs: an image whose manifest the registry holds but
// one of whose layers it lost is not skipped: the lost layer is pushed
// again and the image is whole.
func TestPushRepairsLostBlobs(t *testing.T) {
	host := fixture.Registry(t)
	src, root := memImage(t, fixture.ImageOptions{Layers: []int{2048, 4096}, Seed: 60})
	repo := unique(t, "lost")
	target := host + "/" + repo + ":v1"
	if _, err := Push(t.Context(), src, []PushImage{{Descriptor: root, Target: target}}, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	succ, err := content.Successors(t.Context(), src, root)
	if err != nil {
		t.Fatal(err)
	}
	lost := succ[len(succ)-1] // a layer
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, "http://"+host+"/v2/"+repo+"/blobs/"+lost.Digest.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE blob: %s", resp.Status)
	}
	res, err := Push(t.Context(), src, []PushImage{{Descriptor: root, Target: target}}, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsPushed != 1 || res.BytesPushed != lost.Size {
		t.Fatalf("second push %+v, want the lost layer (%d bytes) pushed again", *res, lost.Size)
	}
	if _, err := Pull(t.Context(), []string{target}, memory.New(), PullOptions{}); err != nil {
		t.Fatalf("pull after the repair: %v", err)
	}
}
