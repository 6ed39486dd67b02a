package hubclient

import (
	"errors"
	"path/filepath"
	"strings"
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

// A hub on another machine is never called over plain HTTP: the login
// password and the stored token would cross the network in clear.
func TestNewRefusesPlainHTTPToRemoteHub(t *testing.T) {
	for _, c := range []struct {
		addr string
		ok   bool
		base string
	}{
		{"http://hub.example:8443", false, ""},
		{"HTTP://10.0.0.7", false, ""},
		{"http://[2001:db8::1]:8443", false, ""},
		{"hub.example:8443", true, "https://hub.example:8443"},
		{"https://hub.example:8443", true, "https://hub.example:8443"},
		{"http://127.0.0.1:8443", true, "http://127.0.0.1:8443"},
		{"http://localhost:8443", true, "http://localhost:8443"},
		{"http://[::1]:8443", true, "http://[::1]:8443"},
	} {
		cl, err := New(c.addr, Options{Username: "ada", Token: "secret-token"})
		if !c.ok {
			if !errors.Is(err, ErrPlainHTTP) || !strings.Contains(err.Error(), "write https://") || strings.Contains(err.Error(), "secret-token") {
				t.Errorf("New(%q): %v, want ErrPlainHTTP naming https://", c.addr, err)
			}
			continue
		}
		if err != nil || cl.URL() != c.base {
			t.Errorf("New(%q): %v %v, want %s", c.addr, cl, err, c.base)
		}
	}
}
