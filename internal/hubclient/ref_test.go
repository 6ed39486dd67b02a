package hubclient

import (
	"path/filepath"
	"testing"
)

func TestParseRef(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"hub.example:8443/acme/shop:1.2.0", Ref{"hub.example:8443", "acme", "shop", "1.2.0"}, true},
		{"https://127.0.0.1:5000/acme/shop:v1", Ref{"https://127.0.0.1:5000", "acme", "shop", "v1"}, true},
		{"HTTP://Hub.Example/acme/shop:v1", Ref{"http://hub.example", "acme", "shop", "v1"}, true},
		{"[::1]:8443/acme/shop:1", Ref{"[::1]:8443", "acme", "shop", "1"}, true},
		{"ftp://hub/acme/shop:1", Ref{}, false},
		{"::1:8443/acme/shop:1", Ref{}, false},
		{"hub/acme/shop", Ref{}, false},
		{"hub/acme/shop:", Ref{}, false},
		{"hub/Acme/shop:1", Ref{}, false},
		{"hub/acme/a/shop:1", Ref{}, false},
		{"hub/acme/shop:1+build", Ref{}, false},
		{"/acme/shop:1", Ref{}, false},
	} {
		got, err := ParseRef(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%q: %+v %v", c.in, got, err)
		}
	}
	if LooksLikeRef(filepath.Join(t.TempDir(), "x.skiff")) {
		t.Error("a file path looks like a ref")
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"hub:1/acme/shop:1.0", "a/b/c:d", "x", "a//b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		back, err := ParseRef(r.String())
		if err != nil || back != r {
			t.Fatalf("%q → %+v → %q: %+v %v", s, r, r.String(), back, err)
		}
	})
}
