package cli

import (
	"strings"
	"testing"
)

// TestRemoteFlagsSchemes: --registry-mirror targets and --plain-http hosts
// are parsed as addresses; a mirror written https:// is reached over TLS
// even on 127.0.0.1.
func TestRemoteFlagsSchemes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f       remoteFlags
		mirrors map[string]string
		plain   map[string]bool
		err     string
	}{
		{"https mirror on loopback", remoteFlags{mirrors: []string{"docker.io=https://127.0.0.1:5000/mirror/"}},
			map[string]string{"docker.io": "127.0.0.1:5000/mirror"}, map[string]bool{"127.0.0.1:5000": false, "127.0.0.1:5001": true}, ""},
		{"mirror without scheme", remoteFlags{mirrors: []string{"quay.io=127.0.0.1:5000"}},
			map[string]string{"quay.io": "127.0.0.1:5000"}, map[string]bool{"127.0.0.1:5000": true}, ""},
		{"http mirror", remoteFlags{mirrors: []string{"quay.io=HTTP://Mirror.example/q"}},
			map[string]string{"quay.io": "mirror.example/q"}, map[string]bool{"mirror.example": true}, ""},
		{"plain-http host", remoteFlags{plainHTTP: []string{"registry.example:5000"}, caFile: "ca.pem"},
			nil, map[string]bool{"registry.example:5000": true, "127.0.0.1:5000": false}, ""},
		{"bad mirror", remoteFlags{mirrors: []string{"docker.io=ftp://x"}}, nil, nil, `scheme "ftp"`},
		{"plain-http with a path", remoteFlags{plainHTTP: []string{"registry.example/p"}}, nil, nil, "give a registry HOST[:PORT]"},
		{"plain-http written https", remoteFlags{plainHTTP: []string{"https://registry.example"}}, nil, nil, "give a registry HOST[:PORT]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.f.options()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for from, to := range tc.mirrors {
				if o.Mirrors[from] != to {
					t.Errorf("mirror of %s = %q, want %q", from, o.Mirrors[from], to)
				}
			}
			for host, want := range tc.plain {
				if got := o.PlainHTTP(host); got != want {
					t.Errorf("PlainHTTP(%s) = %v, want %v", host, got, want)
				}
			}
		})
	}
}
