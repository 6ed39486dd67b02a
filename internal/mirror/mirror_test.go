package mirror

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBdGVzdA==\n-----END CERTIFICATE-----\n"

var cases = map[string]Options{
	"plain":    {Registry: "10.0.0.5:5000/site", Upstreams: []string{"quay.io", "docker.io"}, PlainHTTP: true},
	"tls":      {Registry: "registry.example.com/airgap/team", Upstreams: []string{"registry.k8s.io", "index.docker.io"}, CA: []byte(testCA), Username: "node", Password: "p\"w"},
	"noprefix": {Registry: "registry.example.com:443", Upstreams: []string{"ghcr.io", "Harbor.corp:8443"}, SkipVerify: true},
}

// render prints files as the golden files hold them.
func render(files []File) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "==> %s (%04o) <==\n%s", f.Path, f.Mode, f.Data)
		if !bytes.HasSuffix(f.Data, []byte("\n")) {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	for _, format := range Formats {
		for name, o := range cases {
			t.Run(string(format)+"/"+name, func(t *testing.T) {
				files, err := Files(format, o)
				if err != nil {
					t.Fatal(err)
				}
				got := render(files)
				golden := filepath.Join("testdata", string(format)+"-"+name+".golden")
				if *update {
					if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./internal/mirror -run Golden -update)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs (go test ./internal/mirror -run Golden -update to accept):\n%s", golden, got)
				}
				for _, f := range files {
					if !bytes.HasPrefix(f.Data, []byte(Marker)) && !strings.HasSuffix(f.Path, ".json") {
						t.Errorf("%s does not start with the marker", f.Path)
					}
					secret := o.Password != "" && (bytes.Contains(f.Data, []byte(base64.StdEncoding.EncodeToString([]byte(o.Username+":"+o.Password)))) ||
						bytes.Contains(f.Data, []byte("password")))
					if secret && f.Mode != 0o600 {
						t.Errorf("%s holds credentials with mode %04o", f.Path, f.Mode)
					}
				}
			})
		}
	}
}

// The containerd format as containerd reads it (remotes/docker/config's
// hostFileConfig fields).
type hostsFile struct {
	Server string               `toml:"server"`
	Host   map[string]hostEntry `toml:"host"`
}

type hostEntry struct {
	Capabilities []string          `toml:"capabilities"`
	CA           string            `toml:"ca"`
	SkipVerify   bool              `toml:"skip_verify"`
	OverridePath bool              `toml:"override_path"`
	Header       map[string]string `toml:"header"`
}

// The CRI-O format as containers/image's sysregistriesv2 reads it.
type registriesConf struct {
	Registries []struct {
		Prefix   string `toml:"prefix"`
		Location string `toml:"location"`
		Insecure bool   `toml:"insecure"`
		Mirrors  []struct {
			Location string `toml:"location"`
			Insecure bool   `toml:"insecure"`
		} `toml:"mirror"`
	} `toml:"registry"`
}

func decodeTOML(t *testing.T, data []byte, v any) {
	t.Helper()
	md, err := toml.Decode(string(data), v)
	if err != nil {
		t.Fatalf("TOML: %v\n%s", err, data)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("unknown TOML keys %v\n%s", u, data)
	}
}

func decodeYAML(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("YAML: %v\n%s", err, data)
	}
}

func fileMap(files []File) map[string]File {
	m := map[string]File{}
	for _, f := range files {
		m[f.Path] = f
	}
	return m
}

// TestParsed decodes every format strictly and checks that an upstream
// name maps to REGISTRY/PREFIX/UPSTREAM/PATH.
func TestParsed(t *testing.T) {
	o := cases["tls"]
	const wantRepo = "registry.example.com/airgap/team/docker.io/library/nginx"
	t.Run("containerd", func(t *testing.T) {
		files, err := Files(Containerd, o)
		if err != nil {
			t.Fatal(err)
		}
		m := fileMap(files)
		var hf hostsFile
		decodeTOML(t, m["docker.io/hosts.toml"].Data, &hf)
		if len(hf.Host) != 1 {
			t.Fatalf("hosts: %v", hf.Host)
		}
		for url, h := range hf.Host {
			// containerd with override_path: URL + "/" + repository path + "/manifests/..."
			if got := strings.TrimPrefix(url, "https://") + "/library/nginx"; strings.Replace(got, "/v2/", "/", 1) != wantRepo {
				t.Errorf("docker.io/library/nginx → %s, want %s", got, wantRepo)
			}
			if !h.OverridePath || h.CA != "ca.crt" || h.Header["Authorization"] != "Basic "+base64.StdEncoding.EncodeToString([]byte("node:p\"w")) {
				t.Errorf("host entry %+v", h)
			}
		}
		if _, ok := m["docker.io/ca.crt"]; !ok {
			t.Error("no docker.io/ca.crt")
		}
		var site hostsFile
		decodeTOML(t, m["registry.example.com/hosts.toml"].Data, &site)
		if site.Server != "https://registry.example.com" {
			t.Errorf("site server %q", site.Server)
		}
	})
	t.Run("k3s", func(t *testing.T) {
		files, err := Files(K3s, o)
		if err != nil {
			t.Fatal(err)
		}
		var r k3sRegistries
		decodeYAML(t, fileMap(files)["registries.yaml"].Data, &r)
		mr := r.Mirrors["docker.io"]
		if len(mr.Endpoint) != 1 || mr.Endpoint[0] != "https://registry.example.com" {
			t.Fatalf("docker.io mirror %+v", mr)
		}
		for re, repl := range mr.Rewrite {
			got := regexp.MustCompile(re).ReplaceAllString("library/nginx", repl)
			if "registry.example.com/"+got != wantRepo {
				t.Errorf("rewrite gives %s, want %s", got, wantRepo)
			}
		}
		c := r.Configs["registry.example.com"]
		if c.Auth == nil || c.Auth.Password != "p\"w" || c.TLS == nil || c.TLS.CAFile != DefaultK3sCAPath {
			t.Errorf("config %+v", c)
		}
	})
	t.Run("crio", func(t *testing.T) {
		files, err := Files(CRIO, o)
		if err != nil {
			t.Fatal(err)
		}
		m := fileMap(files)
		var rc registriesConf
		decodeTOML(t, m["registries.conf.d/50-skiff.conf"].Data, &rc)
		found := false
		for _, r := range rc.Registries {
			if r.Prefix == "docker.io" {
				found = true
				// containers/image replaces the matched prefix with the mirror's location
				if got := r.Mirrors[0].Location + strings.TrimPrefix("docker.io/library/nginx", r.Prefix); got != wantRepo {
					t.Errorf("docker.io/library/nginx → %s, want %s", got, wantRepo)
				}
			}
		}
		if !found {
			t.Error("no docker.io registry")
		}
		if _, ok := m["certs.d/registry.example.com/ca.crt"]; !ok {
			t.Error("no certs.d CA")
		}
		if f := m["auth.json"]; f.Mode != 0o600 || !bytes.Contains(f.Data, []byte(`"registry.example.com"`)) {
			t.Errorf("auth.json %04o %s", f.Mode, f.Data)
		}
	})
	t.Run("talos", func(t *testing.T) {
		files, err := Files(Talos, o)
		if err != nil {
			t.Fatal(err)
		}
		var p talosPatch
		decodeYAML(t, files[0].Data, &p)
		mr := p.Machine.Registries.Mirrors["docker.io"]
		if len(mr.Endpoints) != 1 || !mr.OverridePath || !mr.SkipFallback {
			t.Fatalf("mirror %+v", mr)
		}
		if got := strings.Replace(strings.TrimPrefix(mr.Endpoints[0], "https://"), "/v2/", "/", 1) + "/library/nginx"; got != wantRepo {
			t.Errorf("→ %s, want %s", got, wantRepo)
		}
		ca, _ := base64.StdEncoding.DecodeString(p.Machine.Registries.Config["registry.example.com"].TLS.CA)
		if string(ca) != testCA {
			t.Errorf("CA %q", ca)
		}
	})
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		o      Options
		want   string
	}{
		{"no registry", Containerd, Options{}, "no site registry"},
		{"https and plain HTTP", Containerd, Options{Registry: "https://r.example", PlainHTTP: true}, "written with https://"},
		{"other scheme", Containerd, Options{Registry: "oci://r.example"}, `scheme "oci"`},
		{"http CA via scheme", Containerd, Options{Registry: "http://r.example", CA: []byte(testCA)}, "plain-HTTP"},
		{"bad upstream", Containerd, Options{Registry: "r.example", Upstreams: []string{"docker.io/library"}}, "registry host"},
		{"self", Containerd, Options{Registry: "r.example/p", Upstreams: []string{"r.example"}}, "site registry itself"},
		{"bad CA", Containerd, Options{Registry: "r.example", CA: []byte("nope")}, "not a PEM certificate"},
		{"http CA", Containerd, Options{Registry: "r.example", PlainHTTP: true, CA: []byte(testCA)}, "plain-HTTP"},
		{"half creds", Containerd, Options{Registry: "r.example", Username: "u"}, "both a user name and a password"},
		{"format", Format("docker"), Options{Registry: "r.example"}, "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Files(tt.format, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestSchemeInAddress: http:// means plain HTTP, https:// the same as no
// scheme, for every format.
func TestSchemeInAddress(t *testing.T) {
	for _, f := range Formats {
		for _, tc := range []struct {
			reg string
			o   Options
		}{
			{"http://r.example:5000/site", Options{Registry: "r.example:5000/site", PlainHTTP: true}},
			{"HTTPS://R.example:5000/site", Options{Registry: "r.example:5000/site"}},
		} {
			got, err := Files(f, Options{Registry: tc.reg})
			if err != nil {
				t.Fatalf("%s %s: %v", f, tc.reg, err)
			}
			want, err := Files(f, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s:\n%v\nwant\n%v", f, tc.reg, got, want)
			}
		}
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	files, err := Files(Containerd, cases["tls"])
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, files, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "docker.io", "hosts.toml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hosts.toml with credentials: %v %v", fi, err)
	}
	// generated files are ours: writing again replaces them
	if err := Write(dir, files, false); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	// a file skiff did not write is refused, and nothing is written
	foreign := filepath.Join(dir, "quay.io", "hosts.toml")
	if err := os.MkdirAll(filepath.Dir(foreign), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(foreign, []byte("server = \"https://quay.io\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	more, err := Files(Containerd, Options{Registry: "r.example/p", Upstreams: []string{"quay.io", "ghcr.io"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, more, false); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("overwrite of a foreign file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ghcr.io")); !os.IsNotExist(err) {
		t.Errorf("ghcr.io written although the write was refused: %v", err)
	}
	if err := Write(dir, more, true); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if err := Write(dir, []File{{Path: "../x", Data: []byte("x")}}, true); err == nil {
		t.Error("a path outside the directory was written")
	}
}
