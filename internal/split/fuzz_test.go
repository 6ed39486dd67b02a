package split_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/split"
)

func FuzzReadPartsManifest(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	valid := `{"version":1,"archive":{"name":"a.skiff","size":10,"sha256":"` + sum + `"},"partSize":4,"parity":1,"parts":[` +
		`{"name":"a.skiff.part-001","size":4,"sha256":"` + sum + `"},` +
		`{"name":"a.skiff.part-002","size":4,"sha256":"` + sum + `"},` +
		`{"name":"a.skiff.part-003","size":2,"sha256":"` + sum + `"},` +
		`{"name":"a.skiff.parity-001","size":4,"sha256":"` + sum + `","parity":true}]}`
	for _, s := range []string{
		valid,
		strings.Replace(valid, `"size":2`, `"size":3`, 1),
		strings.Replace(valid, `a.skiff.part-002`, `../etc/passwd`, 1),
		`{"version":1,"archive":{"name":"e","size":0,"sha256":"` + sum + `"},"partSize":1,"parts":[{"name":"e.part-001","size":0,"sha256":"` + sum + `"}]}`,
		`{"version":1,"archive":{"name":"x","size":9223372036854775807,"sha256":"` + sum + `"},"partSize":1,"parts":[]}`,
		`{"version":1,"partSize":-1}`,
		`[]`, `null`, ``, `{"version":1}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := split.ParseManifest(b)
		if err != nil {
			return
		}
		// An accepted manifest is self-consistent.
		var total int64
		for _, p := range m.Data() {
			if p.Parity || strings.ContainsAny(p.Name, `/\`) || p.Size > m.PartSize {
				t.Fatalf("accepted bad part %+v", p)
			}
			total += p.Size
		}
		if total != m.Archive.Size {
			t.Fatalf("data parts hold %d bytes, archive %d", total, m.Archive.Size)
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := split.ParseManifest(out); err != nil {
			t.Fatalf("re-encoded manifest rejected: %v", err)
		}
	})
}
