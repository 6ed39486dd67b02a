package sbom_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/sbom"
	"github.com/skiffhq/skiff/internal/sbom/sbomtest"
)

// TestToSPDX converts a generated image SBOM and checks the fields SPDX
// 2.3 requires, the packages and relationships, and determinism.
func TestToSPDX(t *testing.T) {
	host := fixture.Registry(t)
	md := sbomtest.PushLayers(t, host+"/cat/app:1", "linux/amd64", sbomtest.Image(t))
	repo, err := remote.NewRepository(host + "/cat/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	ctx := t.Context()
	ms, err := sbom.Manifests(ctx, repo, md)
	if err != nil || len(ms) != 1 {
		t.Fatalf("Manifests = %v, %v", ms, err)
	}
	cdx, err := sbom.Generate(ctx, repo, ms[0].Descriptor, sbom.Options{Ref: host + "/cat/app:1", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := sbom.ToSPDX(cdx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := sbom.ToSPDX(cdx, time.Time{})
	if err != nil || !bytes.Equal(out, again) {
		t.Fatalf("ToSPDX is not deterministic (%v)", err)
	}

	// Decode generically, so the check is on the JSON as written.
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": host + "/cat/app:1"} {
		if doc[k] != want {
			t.Errorf("%s = %v, want %q", k, doc[k], want)
		}
	}
	if ns, _ := doc["documentNamespace"].(string); !strings.HasPrefix(ns, "https://") || strings.Contains(ns, "#") {
		t.Errorf("documentNamespace = %q, want an https URI without #", ns)
	}
	ci, _ := doc["creationInfo"].(map[string]any)
	if ci["created"] != "1970-01-01T00:00:00Z" {
		t.Errorf("creationInfo.created = %v", ci["created"])
	}
	if cr, _ := ci["creators"].([]any); len(cr) == 0 || !strings.HasPrefix(cr[0].(string), "Tool: ") {
		t.Errorf("creationInfo.creators = %v, want a Tool: entry", ci["creators"])
	}
	idRE := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	ids := map[string]bool{}
	pkgs, _ := doc["packages"].([]any)
	var refPURLs []string
	for _, p := range pkgs {
		p := p.(map[string]any)
		id, _ := p["SPDXID"].(string)
		if !idRE.MatchString(id) || ids[id] {
			t.Errorf("package SPDXID %q is invalid or repeated", id)
		}
		ids[id] = true
		for _, k := range []string{"name", "downloadLocation", "licenseConcluded", "licenseDeclared", "copyrightText"} {
			if s, _ := p[k].(string); s == "" {
				t.Errorf("package %s has no %s", id, k)
			}
		}
		if _, ok := p["filesAnalyzed"].(bool); !ok {
			t.Errorf("package %s has no filesAnalyzed", id)
		}
		refs, _ := p["externalRefs"].([]any)
		for _, r := range refs {
			r := r.(map[string]any)
			if r["referenceCategory"] == "PACKAGE-MANAGER" && r["referenceType"] == "purl" {
				refPURLs = append(refPURLs, r["referenceLocator"].(string))
			}
		}
	}
	if want := len(purls(t, cdx)); len(refPURLs) != want || want == 0 {
		t.Errorf("%d purl external references, want %d", len(refPURLs), want)
	}
	if !strings.Contains(string(out), "pkg:npm/left-pad@1.1.0") {
		t.Error("left-pad is missing")
	}
	rels, _ := doc["relationships"].([]any)
	describes := 0
	for _, r := range rels {
		r := r.(map[string]any)
		if !ids[r["relatedSpdxElement"].(string)] || (r["spdxElementId"] != "SPDXRef-DOCUMENT" && !ids[r["spdxElementId"].(string)]) {
			t.Errorf("relationship %v names an unknown element", r)
		}
		if r["relationshipType"] == "DESCRIBES" {
			describes++
		}
	}
	if describes != 1 || len(rels) != len(pkgs) {
		t.Errorf("%d relationships (%d DESCRIBES) for %d packages", len(rels), describes, len(pkgs))
	}

	if _, err := sbom.ToSPDX([]byte(`{"spdxVersion":"SPDX-2.3"}`), time.Time{}); err == nil {
		t.Error("ToSPDX accepted a document that is not CycloneDX")
	}
}
