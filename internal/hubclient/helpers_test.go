package hubclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/sign"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testHub is a running hub with users:
//
//	root   site administrator
//	alice  write on acme (the uploader)
//	bob    admin on acme (a reviewer)
//	carol  read on acme
//	dave   nothing
type testHub struct {
	hub   *hub.Hub
	host  string
	root  string
	clock *clock
	key   *sign.PrivateKey
	ctx   context.Context
}

const password = "correct-horse-battery"

func newTestHub(t *testing.T, o hub.Options) *testHub {
	t.Helper()
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	key, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	trustDir := t.TempDir()
	pub, _ := sign.MarshalPublicKey(key.Public())
	if err := sign.AddTrusted(trustDir, pub, "publisher"); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	o.Root = t.TempDir()
	if o.TrustDir == "" {
		o.TrustDir = trustDir
	}
	o.Now = clk.Now
	h, err := hub.New(ctx, o)
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	st := h.Store()
	for _, u := range []struct {
		name  string
		admin bool
	}{{"root", true}, {"alice", false}, {"bob", false}, {"carol", false}, {"dave", false}} {
		if err := st.AddUser(ctx, u.name, password, u.admin); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []struct {
		user  string
		level hub.Level
	}{{"alice", hub.LevelWrite}, {"bob", hub.LevelAdmin}, {"carol", hub.LevelRead}} {
		if err := st.Grant(ctx, "acme", g.user, g.level); err != nil {
			t.Fatal(err)
		}
	}
	return &testHub{hub: h, host: strings.TrimPrefix(srv.URL, "http://"), root: o.Root, clock: clk, key: key, ctx: ctx}
}

// client logs user in and returns a client with the token.
func (th *testHub) client(t *testing.T, user string) *hubclient.Client {
	t.Helper()
	anon := th.anon(t)
	tok, err := anon.Login(th.ctx, user, password, "", 0)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	c, err := hubclient.New(th.host, hubclient.Options{Username: user, Token: tok.Secret})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (th *testHub) anon(t *testing.T) *hubclient.Client {
	t.Helper()
	c, err := hubclient.New(th.host, hubclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pushJSON(t *testing.T, s *memory.Store, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return pushBytes(t, s, mediaType, b)
}

func pushBytes(t *testing.T, s *memory.Store, mediaType string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := content.NewDescriptorFromBytes(mediaType, b)
	d.Data = nil
	if err := s.Push(context.Background(), d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return d
}

// makeArchive writes a small package archive (one image of two random
// layers, a chart layer), signed with key unless key is nil.
func makeArchive(t *testing.T, dir, name, version string, seed uint64, key *sign.PrivateKey) string {
	t.Helper()
	ctx := context.Background()
	s := memory.New()
	rnd := rand.New(rand.NewPCG(seed, 7))
	var layers []ocispec.Descriptor
	for range 2 {
		b := make([]byte, 2048)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		layers = append(layers, pushBytes(t, s, ocispec.MediaTypeImageLayerGzip, b))
	}
	cfg := pushJSON(t, s, ocispec.MediaTypeImageConfig, ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	img := pushJSON(t, s, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers,
	})
	ref := "docker.io/library/app:1.0"
	img.Annotations = map[string]string{bundle.AnnotationRefName: ref}
	d := &bundle.Description{
		Name: name, Version: version, Description: "the " + name + " package",
		Spec:   &v1alpha1.Package{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: v1alpha1.Metadata{Name: name, Version: version}},
		Images: []bundle.Image{{Ref: ref, Digest: img.Digest, MediaType: img.MediaType, Size: img.Size}},
		Charts: []bundle.Chart{{Name: "web", Chart: "web", Version: "0.1.0"}},
	}
	root, err := bundle.Assemble(ctx, s, d, []ocispec.Descriptor{img}, []bundle.Layer{{MediaType: bundle.MediaTypeChart, Data: []byte("chart"), Title: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+"-"+version+".skiff")
	if _, err := bundle.Write(ctx, s, root, out, bundle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if key != nil {
		env, err := sign.Sign(ctx, key, sign.Subject{Name: name + ":" + version, Digest: root.Digest}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := bundle.AddSignature(ctx, out, env); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
