package split_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/split"
)

// archive writes n random bytes to dir/pkg.skiff.
func archive(t *testing.T, dir string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(n)}).Read(b)
	p := filepath.Join(dir, "pkg.skiff")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestRoundTrip(t *testing.T) {
	// Small stripes, so shards span several.
	defer split.SetMaxStripe(8 << 10)()
	tests := []struct {
		name           string
		size, partSize int
		parity         int
		damage         func(t *testing.T, dir string) // before join
		wantErr        error
		wantRepaired   bool
	}{
		{name: "no parity", size: 100_000, partSize: 30_000},
		{name: "exact multiple", size: 90_000, partSize: 30_000, parity: 1},
		{name: "one part", size: 1000, partSize: 4096, parity: 2},
		{name: "empty archive", size: 0, partSize: 4096, parity: 1},
		{name: "stripes", size: 700_000, partSize: 300_000, parity: 2}, // shard larger than one stripe
		{name: "corrupt part repaired", size: 100_000, partSize: 30_000, parity: 1,
			damage: func(t *testing.T, dir string) { flip(t, filepath.Join(dir, "pkg.skiff.part-002"), 777) }, wantRepaired: true},
		{name: "short last part lost", size: 100_000, partSize: 30_000, parity: 1,
			damage: func(t *testing.T, dir string) { remove(t, dir, "pkg.skiff.part-004") }, wantRepaired: true},
		{name: "two lost, two parity", size: 700_000, partSize: 100_000, parity: 2,
			damage: func(t *testing.T, dir string) {
				remove(t, dir, "pkg.skiff.part-001")
				flip(t, filepath.Join(dir, "pkg.skiff.part-005"), 99_999)
			}, wantRepaired: true},
		{name: "lost parity part ignored", size: 100_000, partSize: 30_000, parity: 1,
			damage: func(t *testing.T, dir string) { remove(t, dir, "pkg.skiff.parity-001") }},
		{name: "truncated part repaired", size: 100_000, partSize: 30_000, parity: 1,
			damage: func(t *testing.T, dir string) { os.Truncate(filepath.Join(dir, "pkg.skiff.part-003"), 10) }, wantRepaired: true},
		{name: "too many lost", size: 100_000, partSize: 30_000, parity: 1,
			damage: func(t *testing.T, dir string) {
				remove(t, dir, "pkg.skiff.part-003")
				flip(t, filepath.Join(dir, "pkg.skiff.part-001"), 5)
			}, wantErr: split.ErrTooDamaged},
		{name: "lost without parity", size: 100_000, partSize: 30_000,
			damage: func(t *testing.T, dir string) { remove(t, dir, "pkg.skiff.part-002") }, wantErr: split.ErrTooDamaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			path, want := archive(t, dir, tt.size)
			m, err := split.Split(ctx, path, split.Options{PartSize: int64(tt.partSize), Parity: tt.parity})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Parts) != len(m.Data())+tt.parity {
				t.Fatalf("%d parts, %d data, parity %d", len(m.Parts), len(m.Data()), tt.parity)
			}
			var sum int64
			for _, p := range m.Data() {
				sum += p.Size
				if p.Size > int64(tt.partSize) {
					t.Errorf("part %s is %d bytes, more than %d", p.Name, p.Size, tt.partSize)
				}
			}
			if sum != int64(tt.size) {
				t.Errorf("data parts hold %d bytes, want %d", sum, tt.size)
			}
			if tt.damage != nil {
				tt.damage(t, dir)
			}
			out := filepath.Join(t.TempDir(), "joined.skiff")
			res, err := split.Join(ctx, split.ManifestPath(path), split.JoinOptions{Output: out})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Join: %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "copy the parts again") {
					t.Errorf("error %q does not say how to fix it", err)
				}
				if _, serr := os.Stat(out); serr == nil {
					t.Error("a failed join left its output")
				}
				return
			}
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			if res.Repaired != tt.wantRepaired {
				t.Errorf("Repaired = %v, want %v (damaged %v)", res.Repaired, tt.wantRepaired, res.Damaged)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("joined archive differs from the original (%d vs %d bytes)", len(got), len(want))
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp*"))
			if len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestTooDamagedNamesParts(t *testing.T) {
	dir := t.TempDir()
	path, _ := archive(t, dir, 50_000)
	if _, err := split.Split(context.Background(), path, split.Options{PartSize: 10_000, Parity: 1}); err != nil {
		t.Fatal(err)
	}
	remove(t, dir, "pkg.skiff.part-003")
	remove(t, dir, "pkg.skiff.part-005")
	_, err := split.Join(context.Background(), split.ManifestPath(path), split.JoinOptions{Output: filepath.Join(dir, "out")})
	for _, want := range []string{"part-003 (missing)", "part-005 (missing)", "1 parity part can rebuild only one"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

func TestJoinRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	path, _ := archive(t, dir, 5000)
	if _, err := split.Split(context.Background(), path, split.Options{PartSize: 1000}); err != nil {
		t.Fatal(err)
	}
	// The default output is the original archive, which still exists.
	if _, err := split.Join(context.Background(), split.ManifestPath(path), split.JoinOptions{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("got %v, want a refusal naming --force", err)
	}
	if _, err := split.Join(context.Background(), split.ManifestPath(path), split.JoinOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestJoinWrongManifest(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":  "hello",
		"version":   `{"version":2}`,
		"traversal": `{"version":1,"archive":{"name":"../x","size":1,"sha256":"` + strings.Repeat("0", 64) + `"},"partSize":1,"parts":[]}`,
		"count":     `{"version":1,"archive":{"name":"x","size":10,"sha256":"` + strings.Repeat("0", 64) + `"},"partSize":5,"parts":[]}`,
	} {
		p := filepath.Join(dir, name+".parts.json")
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := split.Join(context.Background(), p, split.JoinOptions{}); !errors.Is(err, split.ErrBadManifest) {
			t.Errorf("%s: got %v, want ErrBadManifest", name, err)
		}
	}
	// Parts of another archive: every part checks out against its own
	// manifest entry but not the final checksum.
	path, _ := archive(t, dir, 5000)
	m, err := split.Split(context.Background(), path, split.Options{PartSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	_ = m
	b, _ := os.ReadFile(split.ManifestPath(path))
	b = bytes.Replace(b, []byte(m.Archive.SHA256), []byte(strings.Repeat("a", 64)), 1)
	os.WriteFile(split.ManifestPath(path), b, 0o644)
	if _, err := split.Join(context.Background(), split.ManifestPath(path), split.JoinOptions{Output: filepath.Join(dir, "o")}); !errors.Is(err, split.ErrChecksum) {
		t.Errorf("got %v, want ErrChecksum", err)
	}
}

func TestSplitLimits(t *testing.T) {
	dir := t.TempDir()
	path, _ := archive(t, dir, 300)
	if _, err := split.Split(context.Background(), path, split.Options{PartSize: 1, Parity: 1}); err == nil || !strings.Contains(err.Error(), "larger --size") {
		t.Errorf("got %v, want a too-many-parts error", err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 1 {
		t.Errorf("a failed split left %d files", len(left))
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4G", 4 << 30, true}, {"4GiB", 4 << 30, true}, {"4gb", 4 << 30, true},
		{"700M", 700 << 20, true}, {"512k", 512 << 10, true}, {"1T", 1 << 40, true}, {"1000", 1000, true},
		{"", 0, false}, {"0", 0, false}, {"-1G", 0, false}, {"G", 0, false}, {"1.5G", 0, false}, {"99999999999999T", 0, false},
	}
	for _, tt := range tests {
		got, err := split.ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}
