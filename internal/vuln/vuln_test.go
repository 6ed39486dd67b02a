package vuln_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/sbom"
	"github.com/skiffhq/skiff/internal/sbom/sbomtest"
	"github.com/skiffhq/skiff/internal/vuln"
)

// advisories are made-up OSV advisories about packages of
// sbomtest.Image; the comment says whether each must match.
var advisories = map[string]string{
	// yes: npm left-pad 1.1.0 < 1.3.0, HIGH.
	"GHSA-test-0001.json": `{"id":"GHSA-test-0001","aliases":["CVE-2099-0001"],"summary":"left-pad pads wrong",
	 "affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]}],
	 "database_specific":{"severity":"HIGH"}}`,
	// no: introduced later.
	"GHSA-test-0002.json": `{"id":"GHSA-test-0002","affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"2.0.0"}]}]}],"database_specific":{"severity":"CRITICAL"}}`,
	// yes: libc6 from source glibc, 2.36-9+deb12u4 < 2.36-9+deb12u7, CVSS 9.8.
	"DEBIAN-CVE-2099-0002.json": `{"id":"DEBIAN-CVE-2099-0002","aliases":["CVE-2099-0002"],
	 "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
	 "affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.36-9+deb12u7"}]}]}]}`,
	// no: another Debian release.
	"DEBIAN-CVE-2099-0003.json": `{"id":"DEBIAN-CVE-2099-0003","affected":[{"package":{"ecosystem":"Debian:11","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.40-1"}]}]}]}`,
	// no: fixed in exactly the installed version.
	"DEBIAN-CVE-2099-0004.json": `{"id":"DEBIAN-CVE-2099-0004","affected":[{"package":{"ecosystem":"Debian:12","name":"tzdata"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2024a-0+deb12u1"}]}]}]}`,
	// yes: musl 1.2.4-r2 < 1.2.4-r3, MODERATE.
	"ALPINE-CVE-2099-0005.json": `{"id":"ALPINE-CVE-2099-0005","affected":[{"package":{"ecosystem":"Alpine:v3.19","name":"musl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.2.4-r3"}]}]}],"database_specific":{"severity":"MODERATE"}}`,
	// yes: golang.org/x/sync v0.25.0 < 0.26.0, LOW.
	"GO-2099-0006.json": `{"id":"GO-2099-0006","affected":[{"package":{"ecosystem":"Go","name":"golang.org/x/sync"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.26.0"}]}],"database_specific":{"severity":"LOW"}}]}`,
	// yes: listed version, name normalized.
	"PYSEC-2099-0007.json": `{"id":"PYSEC-2099-0007","affected":[{"package":{"ecosystem":"PyPI","name":"Flask-Login"},"versions":["0.6.2","0.6.3"]}]}`,
	// yes: last_affected is inclusive.
	"GHSA-test-0008.json": `{"id":"GHSA-test-0008","affected":[{"package":{"ecosystem":"npm","name":"@acme/util"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"2.0.0-beta.1"}]}]}],"database_specific":{"severity":"MEDIUM"}}`,
	// no: withdrawn.
	"GHSA-test-0009.json": `{"id":"GHSA-test-0009","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`,
	// skipped: an ecosystem Skiff does not scan.
	"RUSTSEC-2099-0010.json": `{"id":"RUSTSEC-2099-0010","affected":[{"package":{"ecosystem":"crates.io","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`,
}

var wantIDs = []string{"DEBIAN-CVE-2099-0002", "GHSA-test-0001", "ALPINE-CVE-2099-0005", "GHSA-test-0008", "GO-2099-0006", "PYSEC-2099-0007"}

func advisoryDir(t *testing.T) string {
	dir := t.TempDir()
	for name, data := range advisories {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func advisoryZip(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "all.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range advisories {
		w, _ := zw.Create(name)
		w.Write([]byte(data))
	}
	zw.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testSBOM pushes sbomtest.Image and returns its SBOM.
func testSBOM(t *testing.T) sbom.Document {
	t.Helper()
	host := fixture.Registry(t)
	md := sbomtest.PushLayers(t, host+"/scan/app:1", "linux/amd64", sbomtest.Image(t))
	repo, err := remote.NewRepository(host + "/scan/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	b, err := sbom.Generate(t.Context(), repo, md, sbom.Options{Ref: "registry.example/scan/app:1", Platform: "linux/amd64", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return sbom.Document{Image: "registry.example/scan/app:1", Platform: "linux/amd64", Data: b}
}

func TestImportAndScan(t *testing.T) {
	doc := testSBOM(t)
	jsonList := filepath.Join(t.TempDir(), "list.json")
	var parts []string
	for _, a := range advisories {
		parts = append(parts, a)
	}
	os.WriteFile(jsonList, []byte("["+strings.Join(parts, ",")+"]"), 0o644)

	for name, src := range map[string]string{"dir": advisoryDir(t), "zip": advisoryZip(t), "list": jsonList} {
		t.Run(name, func(t *testing.T) {
			dbDir := filepath.Join(t.TempDir(), "db")
			res, err := vuln.Import(t.Context(), dbDir, src)
			if err != nil {
				t.Fatal(err)
			}
			if res.Advisories != 9 || res.Skipped != 2 || res.SourceDigest == "" || res.Imported.IsZero() {
				t.Errorf("import = %+v", res)
			}
			// A second import replaces the first.
			if _, err := vuln.Import(t.Context(), dbDir, src); err != nil {
				t.Fatal(err)
			}
			gens, _ := filepath.Glob(filepath.Join(dbDir, "gen-*"))
			if len(gens) != 1 {
				t.Errorf("generations = %v", gens)
			}
			db, err := vuln.Open(dbDir)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := vuln.Scan(t.Context(), db, []sbom.Document{doc})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, f := range rep.Findings {
				ids = append(ids, f.ID)
			}
			if !slices.Equal(ids, wantIDs) {
				t.Fatalf("findings = %v, want %v", ids, wantIDs)
			}
			f := rep.Findings[1]
			if f.Package != "pkg:npm/left-pad@1.1.0" || f.InstalledVersion != "1.1.0" || f.FixedVersion != "1.3.0" ||
				f.Severity != vuln.SeverityHigh || f.Image != doc.Image || f.Platform != "linux/amd64" || !slices.Contains(f.Aliases, "CVE-2099-0001") {
				t.Errorf("left-pad finding = %+v", f)
			}
			if d := rep.Findings[0]; d.Severity != vuln.SeverityCritical || d.FixedVersion != "2.36-9+deb12u7" || d.Name != "libc6" {
				t.Errorf("glibc finding = %+v", d)
			}
		})
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"id":`), 0o644)
	dbDir := filepath.Join(dir, "db")
	if _, err := vuln.Import(t.Context(), dbDir, bad); !errors.Is(err, vuln.ErrBadAdvisory) {
		t.Errorf("Import(bad) = %v", err)
	}
	if _, err := vuln.Open(dbDir); !errors.Is(err, vuln.ErrNoDB) {
		t.Errorf("Open after a failed import = %v", err)
	}
	notZip := filepath.Join(dir, "x.zip")
	os.WriteFile(notZip, []byte("nope"), 0o644)
	if _, err := vuln.Import(t.Context(), dbDir, notZip); err == nil || !strings.Contains(err.Error(), "not a zip") {
		t.Errorf("Import(not a zip) = %v", err)
	}
}

func TestPolicy(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rep := &vuln.Report{Findings: []vuln.Finding{
		{ID: "DEBIAN-CVE-2099-0002", Aliases: []string{"CVE-2099-0002"}, Package: "pkg:deb/debian/libc6@2.36-9", Severity: vuln.SeverityCritical, Image: "app:1", FixedVersion: "2.36-9+deb12u7"},
		{ID: "GHSA-test-0001", Aliases: []string{"CVE-2099-0001"}, Package: "pkg:npm/left-pad@1.1.0", Severity: vuln.SeverityHigh, Image: "app:1", FixedVersion: "1.3.0"},
		{ID: "GO-2099-0006", Package: "pkg:golang/golang.org/x/sync@v0.25.0", Severity: vuln.SeverityLow, Image: "app:1"},
		{ID: "PYSEC-2099-0007", Package: "pkg:pypi/flask-login@0.6.3", Image: "app:1"},
	}}
	tests := []struct {
		name    string
		policy  string
		blocked []string
		expired bool
	}{
		{"default blocks critical", ``, []string{"DEBIAN-CVE-2099-0002"}, false},
		{"high", `failOn: high`, []string{"DEBIAN-CVE-2099-0002", "GHSA-test-0001"}, false},
		{"low leaves unknown", `failOn: low`, []string{"DEBIAN-CVE-2099-0002", "GHSA-test-0001", "GO-2099-0006"}, false},
		{"none", `failOn: none`, nil, false},
		{"allowed by alias", "failOn: high\nallow:\n- id: CVE-2099-0002\n  until: 2025-03-01\n  reason: not reachable\n- id: GHSA-test-0001\n  until: \"2026-01-01T00:00:00Z\"\n", nil, false},
		{"expired", "failOn: high\nallow:\n- id: CVE-2099-0002\n  until: 2025-02-28\n  reason: old\n- id: GHSA-test-0001\n  until: 2026-01-01\n", []string{"DEBIAN-CVE-2099-0002"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := vuln.ParsePolicy([]byte(tt.policy))
			if err != nil {
				t.Fatal(err)
			}
			p.Source = "policy.yaml"
			err = vuln.Evaluate(rep, *p, now)
			if tt.blocked == nil {
				if err != nil {
					t.Fatalf("Evaluate = %v", err)
				}
				return
			}
			var ge *vuln.GateError
			if !errors.As(err, &ge) || !errors.Is(err, vuln.ErrBlocked) {
				t.Fatalf("Evaluate = %v, want a GateError", err)
			}
			var ids []string
			for _, f := range ge.Blocked {
				ids = append(ids, f.ID)
			}
			if !slices.Equal(ids, tt.blocked) {
				t.Errorf("blocked = %v, want %v", ids, tt.blocked)
			}
			if errors.Is(err, vuln.ErrAllowExpired) != tt.expired {
				t.Errorf("ErrAllowExpired = %v, want %v: %v", !tt.expired, tt.expired, err)
			}
			msg := err.Error()
			for _, want := range []string{tt.blocked[0], "app:1", "allow:"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			if tt.expired && !strings.Contains(msg, "CVE-2099-0002 expired on 2025-02-28: renew it in policy.yaml or upgrade the package") {
				t.Errorf("expired message:\n%s", msg)
			}
		})
	}
	for _, bad := range []string{"failOn: severe", "allow:\n- id: X\n", "allow:\n- id: X\n  until: soon\n", "allow:\n- until: 2025-01-01\n", "failOnn: high"} {
		if _, err := vuln.ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("ParsePolicy(%q) succeeded", bad)
		}
	}
}

func TestScanCorruptSBOM(t *testing.T) {
	dbDir := t.TempDir()
	if _, err := vuln.Import(t.Context(), dbDir, advisoryDir(t)); err != nil {
		t.Fatal(err)
	}
	db, err := vuln.Open(dbDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{`{"bomFormat":`, `{"spdxVersion":"SPDX-2.3"}`, `{"bomFormat":"CycloneDX","components":[{"name":"x","purl":"npm/x@1"}]}`} {
		_, err = vuln.Scan(t.Context(), db, []sbom.Document{{Image: "registry.example/broken:1", Platform: "linux/arm64", Data: []byte(data)}})
		if !errors.Is(err, vuln.ErrBadSBOM) || !strings.Contains(err.Error(), "registry.example/broken:1 (linux/arm64)") {
			t.Errorf("Scan(%s) = %v", data, err)
		}
	}
}
