package cli

import "testing"

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
