package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubapi"
	"github.com/skiffhq/skiff/internal/hubclient"
)

// BenchmarkHubExport publishes 10 versions of a package on one hub, each
// a shared 32 MiB base layer, a shared 4 MiB runtime layer and its own
// 256 KiB application layer, and exports them to carry to another hub:
// once whole, and once against the inventory of a hub holding versions
// 1 to 9. It reports the bytes carried (the export file) against the sum
// of the unique blobs and against what one archive per version (the
// former export format) would carry.
func BenchmarkHubExport(b *testing.B) {
	b.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	key, trust := hubtest.TrustedKey(b)
	rng := rand.NewChaCha8([32]byte{7})
	base, runtime := make([]byte, 32<<20), make([]byte, 4<<20)
	rng.Read(base)
	rng.Read(runtime)
	dir := b.TempDir()
	var archives []string
	var perVersion int64 // one archive per version, as the former export stored them
	for i := range 10 {
		app := make([]byte, 256<<10)
		rng.Read(app)
		a := hubtest.ArchiveOf(b, dir, "app", fmt.Sprintf("1.%d.0", i), [][]byte{base, runtime, app}, key)
		archives = append(archives, a)
		st, err := os.Stat(a)
		if err != nil {
			b.Fatal(err)
		}
		perVersion += st.Size()
	}
	src := benchHub(b, trust)
	dst := benchHub(b, trust)
	for i, a := range archives {
		src.publish(b, a, fmt.Sprintf("1.%d.0", i), true)
		if i < 9 {
			dst.publish(b, a, fmt.Sprintf("1.%d.0", i), false)
		}
	}
	inv, err := dst.root.Inventory(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var full, delta *hubapi.ExportManifest
	var fullBytes, deltaBytes int64
	b.ResetTimer()
	for range b.N {
		out := filepath.Join(dir, "full.tar")
		if full, err = src.root.Export(ctx, out, hubclient.ExportOptions{}); err != nil {
			b.Fatal(err)
		}
		fullBytes = fileSize(b, out)
		out = filepath.Join(dir, "delta.tar")
		if delta, err = src.root.Export(ctx, out, hubclient.ExportOptions{Against: inv}); err != nil {
			b.Fatal(err)
		}
		deltaBytes = fileSize(b, out)
	}
	b.StopTimer()
	var unique, missing int64
	for _, bl := range full.Blobs {
		unique += bl.Size
	}
	for _, bl := range delta.Blobs {
		missing += bl.Size
	}
	b.ReportMetric(float64(perVersion), "per-version-archives-B")
	b.ReportMetric(float64(unique), "unique-blobs-B")
	b.ReportMetric(float64(fullBytes), "export-B")
	b.ReportMetric(float64(fullBytes)/float64(unique), "export/unique")
	b.ReportMetric(float64(missing), "missing-blobs-B")
	b.ReportMetric(float64(deltaBytes), "export-against-B")
	b.ReportMetric(float64(deltaBytes)/float64(missing), "against/missing")
	b.ReportMetric(0, "ns/op")
}

// benchHubT is a hub served on 127.0.0.1 with a site administrator, a
// writer and a reviewer of acme.
type benchHubT struct {
	root, writer, reviewer *hubclient.Client
}

func benchHub(b *testing.B, trust string) *benchHubT {
	ctx := context.Background()
	h, err := hub.New(ctx, hub.Options{Root: b.TempDir(), TrustDir: trust})
	if err != nil {
		b.Fatal(err)
	}
	host := hubtest.Serve(b, h)
	const password = "correct-horse-battery"
	st := h.Store()
	for _, u := range []string{"root", "alice", "bob"} {
		if err := st.AddUser(ctx, u, password, u == "root"); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Grant(ctx, "acme", "alice", hub.LevelWrite); err != nil {
		b.Fatal(err)
	}
	if err := st.Grant(ctx, "acme", "bob", hub.LevelAdmin); err != nil {
		b.Fatal(err)
	}
	login := func(user string) *hubclient.Client {
		anon, err := hubclient.New(host, hubclient.Options{})
		if err != nil {
			b.Fatal(err)
		}
		tok, err := anon.Login(ctx, user, password, "", 0)
		if err != nil {
			b.Fatal(err)
		}
		c, err := hubclient.New(host, hubclient.Options{Username: user, Token: tok.Secret})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	return &benchHubT{root: login("root"), writer: login("alice"), reviewer: login("bob")}
}

// publish pushes an archive to acme and, with approve, approves it.
func (h *benchHubT) publish(b *testing.B, archive, version string, approve bool) {
	ctx := context.Background()
	if _, err := h.writer.Push(ctx, archive, "acme", hubclient.PushOptions{}); err != nil {
		b.Fatal(err)
	}
	if approve {
		if _, err := h.reviewer.Approve(ctx, "acme", "app", version, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func fileSize(b *testing.B, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}
