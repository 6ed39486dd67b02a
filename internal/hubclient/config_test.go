package hubclient

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestConfigReadsOldEntries: hubs.json written before logins remembered
// the scheme and CA file still reads, and a login with them round-trips
// through a 0600 file.
func TestConfigReadsOldEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hubs.json")
	old := `{"hubs": {"hub.example:8443": {"username": "ann", "token": "t1", "expires": "2030-01-02T03:04:05Z"}}}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Login{Username: "ann", Token: "t1", Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if got := c.Hubs["hub.example:8443"]; got != want {
		t.Fatalf("old entry read as %+v, want %+v", got, want)
	}
	c.Hubs["127.0.0.1:9443"] = Login{Username: "bob", Token: "t2", Scheme: "https", CAFile: "/etc/ca.pem", Insecure: true}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("hubs.json mode %#o, want 0600", fi.Mode().Perm())
	}
	back, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	for h, l := range c.Hubs {
		if back.Hubs[h] != l {
			t.Errorf("%s: read back %+v, want %+v", h, back.Hubs[h], l)
		}
	}
}
