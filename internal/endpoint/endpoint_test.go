package endpoint

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  Address
		plain bool // PlainHTTP(false)
	}{
		{"127.0.0.1:5000", Address{Host: "127.0.0.1:5000"}, true},
		{"127.0.0.1:5000/mirror", Address{Host: "127.0.0.1:5000", Path: "mirror"}, true},
		{"https://127.0.0.1:5000", Address{Scheme: HTTPS, Host: "127.0.0.1:5000"}, false},
		{"https://127.0.0.1:5000/", Address{Scheme: HTTPS, Host: "127.0.0.1:5000"}, false},
		{"HTTPS://LocalHost:5000/a/b/", Address{Scheme: HTTPS, Host: "localhost:5000", Path: "a/b"}, false},
		{"http://registry.example/mirror", Address{Scheme: HTTP, Host: "registry.example", Path: "mirror"}, true},
		{"Http://registry.example", Address{Scheme: HTTP, Host: "registry.example"}, true},
		{"registry.example", Address{Host: "registry.example"}, false},
		{"registry.example:443/a/b/c", Address{Host: "registry.example:443", Path: "a/b/c"}, false},
		{"localhost", Address{Host: "localhost"}, true},
		{"localhost:5000", Address{Host: "localhost:5000"}, true},
		{"127.1.2.3:80", Address{Host: "127.1.2.3:80"}, true},
		{"[::1]:5000", Address{Host: "[::1]:5000"}, true},
		{"[::1]", Address{Host: "[::1]"}, true},
		{"https://[::1]:5000/p", Address{Scheme: HTTPS, Host: "[::1]:5000", Path: "p"}, false},
		{"[2001:DB8::1]:5000", Address{Host: "[2001:db8::1]:5000"}, false},
		{"10.0.0.1:5000", Address{Host: "10.0.0.1:5000"}, false},
		{"hub.example:8443/acme/shop:1.2.0", Address{Host: "hub.example:8443", Path: "acme/shop:1.2.0"}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Parse = %+v, want %+v", got, tc.want)
			}
			if p := got.PlainHTTP(false); p != tc.plain {
				t.Errorf("PlainHTTP(false) = %v, want %v", p, tc.plain)
			}
			if got.Scheme == "" && got.PlainHTTP(true) {
				t.Errorf("PlainHTTP(true) = true without a scheme: a CA file must mean TLS")
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"", "empty"},
		{"   ", "empty"},
		{"https://", "no host"},
		{"http:///mirror", "no host"},
		{"/mirror", "no host"},
		{"oci://127.0.0.1:5000/x", `scheme "oci"`},
		{"ftp://host", `scheme "ftp"`},
		{"user:pw@host:5000", "user information"},
		{"https://user@host", "user information"},
		{"host:5000/a b", "white space"},
		{"host:", "empty port"},
		{"host:0", "port"},
		{"host:65536", "port"},
		{"host:http", "port"},
		{"host:+80", "port"},
		{"::1", "brackets"},
		{"::1:5000", "brackets"},
		{"[::1", "unclosed"},
		{"[::1]5000", "after ']'"},
		{"[::1]:", "empty port"},
		{"[127.0.0.1]:5000", "IPv6"},
		{"[nothost]:5000", "IPv6"},
		{"host/a//b", "empty path segment"},
		{"host/x?y=1", "query"},
		{"host#frag", "fragment"},
		{"ho\"st", "invalid characters"},
		{":5000", "no host"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := Parse(tc.in)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) = %v, want ErrInvalid", tc.in, err)
			}
			if !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), "https://") {
				t.Errorf("error %q: want it to say %q and show the form", err, tc.why)
			}
		})
	}
}

func TestPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		in        string
		tls, want bool
	}{
		{"127.0.0.1:5000", false, true},
		{"127.0.0.1:5000", true, false},
		{"https://127.0.0.1:5000", false, false},
		{"http://127.0.0.1:5000", true, true},
		{"http://registry.example", false, true},
		{"registry.example", false, false},
		{"localhost:5000", true, false},
	} {
		a, err := Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.PlainHTTP(tc.tls); got != tc.want {
			t.Errorf("Parse(%q).PlainHTTP(%v) = %v, want %v", tc.in, tc.tls, got, tc.want)
		}
		wantURL := "https://" + a.Host
		if tc.want {
			wantURL = "http://" + a.Host
		}
		if got := a.URL(tc.tls); got != wantURL {
			t.Errorf("URL = %q, want %q", got, wantURL)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:5000": true, "127.0.0.1": true, "127.0.0.1:5000": true,
		"127.9.9.9": true, "::1": true, "[::1]": true, "[::1]:5000": true,
		"10.0.0.1": false, "registry.example": false, "localhost.example": false, "[2001:db8::1]:5000": false, "": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
