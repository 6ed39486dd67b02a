package convert

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// inputs returns the KOSI test inputs (every non-golden file in testdata).
func inputs(t testing.TB) []string {
	ents, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && !strings.HasSuffix(e.Name(), ".golden") {
			out = append(out, filepath.Join("testdata", e.Name()))
		}
	}
	return out
}

func render(out []byte, report []string) []byte {
	var b bytes.Buffer
	b.Write(out)
	b.WriteString("# --- report ---\n")
	for _, r := range report {
		b.WriteString("# " + r + "\n")
	}
	return b.Bytes()
}

func TestConvertGolden(t *testing.T) {
	for _, in := range inputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, report, err := Convert(data, filepath.Base(in))
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			got := render(out, report)
			golden := in + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/convert -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update to accept):\n%s", golden, got)
			}
			// Unless the report says a fix is needed, the result is a valid spec.
			needsFix := false
			for _, r := range report {
				needsFix = needsFix || strings.HasPrefix(r, "needs a fix:")
			}
			if _, err := spec.Parse(out, ""); (err != nil) != needsFix {
				t.Errorf("spec.Parse: %v; report says needs fix: %v", err, needsFix)
			}
		})
	}
}

func TestConvertMapping(t *testing.T) {
	data, err := os.ReadFile("testdata/guestbook.kosi")
	if err != nil {
		t.Fatal(err)
	}
	out, report, err := Convert(data, "package.kosi")
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Parse(out, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Metadata.Name != "guestbook" || s.Metadata.Version != "1.2.0" {
		t.Errorf("metadata = %+v", s.Metadata)
	}
	if len(s.Charts) != 1 || s.Charts[0].Path != "guestbook.tgz" || s.Charts[0].Namespace != "guestbook" ||
		strings.Join(s.Charts[0].ValuesFiles, ",") != "gbValues.yaml,values2.yaml" {
		t.Errorf("charts = %+v", s.Charts)
	}
	if len(s.Images) != 2 || s.Images[0] != "gcr.io/google-samples/gb-frontend:v5" || !strings.HasPrefix(s.Images[1], "redis@sha256:") {
		t.Errorf("images = %v", s.Images)
	}
	joined := strings.Join(report, "\n")
	for _, want := range []string{"install, line 29: cmd: host commands are not supported", "logo", "conditional steps are not converted", "Scriban"} {
		if !strings.Contains(joined, want) {
			t.Errorf("report lacks %q:\n%s", want, joined)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct{ name, file, data, want string }{
		{"kosi syntax", "package.kosi", `name = "x"; install { helm(command = ) }`, "line 1"},
		{"unterminated", "package.kosi", `name = "x`, "unterminated string"},
		{"yaml not a mapping", "package.yaml", "- a\n", "expected a mapping"},
		{"yaml tasks", "package.yaml", "installation:\n  tasks: 3\n", "tasks must be a list"},
		{"neither", "pkg", "{{{", "unsupported"},
		{"nesting", "package.kosi", "install {" + strings.Repeat("if(c=\"1\"){", 60), "nested more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Convert([]byte(tt.data), tt.file)
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrUnsupported containing %q", err, tt.want)
			}
		})
	}
}

func FuzzConvert(f *testing.F) {
	for _, in := range inputs(f) {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, filepath.Base(in))
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		out, report, err := Convert(data, name)
		if err != nil {
			return
		}
		// The output always decodes as a spec; rule violations are
		// reported, never silently produced.
		_, perr := spec.Parse(out, "")
		var ve *spec.ValidationError
		if perr != nil && !errors.As(perr, &ve) {
			t.Fatalf("output does not decode: %v\n%s", perr, out)
		}
		if perr != nil {
			found := false
			for _, r := range report {
				found = found || strings.HasPrefix(r, "needs a fix:")
			}
			if !found {
				t.Fatalf("invalid output without a report: %v", perr)
			}
		}
	})
}
