package hub

import (
	"crypto/tls"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		name            string
		tls             bool
		origin, referer string
		want            bool
	}{
		{"origin", false, "http://hub.example:8443", "", true},
		{"origin case", false, "http://HUB.example:8443", "", true},
		{"referer", false, "", "http://hub.example:8443/ui/packages/a/b/1", true},
		{"https origin", true, "https://hub.example:8443", "", true},
		{"http origin on TLS", true, "http://hub.example:8443", "", false},
		{"other host", false, "http://evil.example", "", false},
		{"other port", false, "http://hub.example:9999", "", false},
		{"origin wins", false, "http://evil.example", "http://hub.example:8443/ui/", false},
		{"null", false, "null", "", false},
		{"neither", false, "", "", false},
		{"scheme", false, "ftp://hub.example:8443", "", false},
		{"garbage", false, "::", "", false},
	} {
		r := httptest.NewRequest("POST", "http://hub.example:8443/ui/login", nil)
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.referer != "" {
			r.Header.Set("Referer", c.referer)
		}
		if got := sameOrigin(r); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "/ui/",
		"/ui/packages/a/b/1?x=1":           "/ui/packages/a/b/1?x=1",
		"https://evil.example/ui/":         "/ui/",
		"//evil.example/ui/":               "/ui/",
		"/v2/":                             "/ui/",
		"/ui/\\evil":                       "/ui/",
		"/ui/x\r\nSet-Cookie: a=b":         "/ui/",
		"/ui/packages/acme/shop/1.2.0#top": "/ui/packages/acme/shop/1.2.0#top",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"", "/ui/", "/ui/packages/a/b/c", "//evil", "https://evil/ui/", "/ui/%2F%2Fevil", "/ui/\\x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		u, err := url.Parse(got)
		if err != nil || !strings.HasPrefix(got, uiPrefix) || u.Host != "" || u.Scheme != "" || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
	})
}

func TestCSRFToken(t *testing.T) {
	a, b := csrfToken(TokenPrefix+"one"), csrfToken(TokenPrefix+"two")
	if a == b || a != csrfToken(TokenPrefix+"one") || strings.Contains(a, "one") {
		t.Fatalf("%s %s", a, b)
	}
}
