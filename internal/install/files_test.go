package install

import (
	"errors"
	"testing"

	"github.com/skiffhq/skiff/internal/bundle"
)

func TestExtractNames(t *testing.T) {
	for _, n := range []string{"../x", "/etc/passwd", "a/../../x", "a//b", "./a", `a\..\b`, "", "a/"} {
		if err := checkName(n); !errors.Is(err, bundle.ErrUnsafePath) {
			t.Errorf("checkName(%q) = %v, want ErrUnsafePath", n, err)
		}
	}
	for _, n := range []string{"a", "bin/tool", "docs/x.txt", "..a"} {
		if err := checkName(n); err != nil {
			t.Errorf("checkName(%q) = %v", n, err)
		}
	}
	files := []bundle.File{{Target: "bin/a"}, {Target: "bin/b"}, {Target: "binary"}}
	got, err := selectFiles(files, []string{"bin/"})
	if err != nil || len(got) != 2 || got["binary"].Target != "" {
		t.Errorf("selectFiles(bin/) = %v, %v; want bin/a and bin/b", got, err)
	}
	if _, err := selectFiles([]bundle.File{{Target: "../evil"}}, nil); !errors.Is(err, bundle.ErrUnsafePath) {
		t.Errorf("a package listing ../evil: %v", err)
	}
}
