package cli

import (
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/release"
)

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"Install complete":                          "Install complete",
		"Upgrade failed: chart web:\n  timed out\n": "Upgrade failed: chart web:; timed out",
		"a\tb\r\n\nc  d":                            "a b; c d",
		"":                                          "",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatFlag(t *testing.T) {
	f := &formatFlag{v: formatTable, fileFlag: "--output-file"}
	for _, ok := range []string{"table", "json", "yaml", "text"} {
		if err := f.Set(ok); err != nil {
			t.Errorf("Set(%q): %v", ok, err)
		}
	}
	if err := f.Set("pkg.skiff"); err == nil || err.Error() != "-o selects the output format (table, json or yaml); to write the file pkg.skiff, use --output-file pkg.skiff" {
		t.Errorf("Set(pkg.skiff) = %v", err)
	}
}

func TestReportComponents(t *testing.T) {
	r := &release.Record{Namespace: "shop", Components: []release.Component{
		{Name: "web", Kind: "chart", HelmRelease: "shop-web", HelmRevision: 2},
		{Name: "jobs", Kind: "manifests", Objects: []release.Object{
			{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "cfg"},
			{Group: "batch", Version: "v1", Kind: "Job", Namespace: "ops", Name: "migrate"},
		}},
		{Name: "cleanup", Kind: "manifests", Deferred: true},
	}}
	var b strings.Builder
	reportComponents(&b, r)
	want := "  chart web: Helm release shop-web (revision 2) in namespace shop\n" +
		"  manifests jobs: 2 objects in namespace shop: ConfigMap/cfg, Job/ops/migrate\n"
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
}
