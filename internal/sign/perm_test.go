package sign_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/sign"
)

func TestInsecurePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no file modes on Windows")
	}
	key, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sign.MarshalPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		keyMode os.FileMode // of the private key file
		dirMode os.FileMode // of the trust directory
		pubMode os.FileMode // of the trusted key
		wantKey string      // the fix named for the private key; "" if accepted
		wantDir string      // the fix named for the trust directory or key; "" if accepted
	}{
		{"as keygen and trust add write them", 0o600, 0o755, 0o644, "", ""},
		{"private key readable by all", 0o644, 0o755, 0o644, "chmod 600", ""},
		{"private key readable by the group", 0o640, 0o755, 0o644, "chmod 600", ""},
		{"world-writable trust directory", 0o600, 0o777, 0o644, "", "chmod o-w"},
		{"world-writable sticky trust directory", 0o600, 0o1777, 0o644, "", "chmod o-w"},
		{"world-writable trusted key", 0o600, 0o755, 0o666, "", "chmod o-w"},
		{"group-writable trust directory", 0o600, 0o775, 0o644, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files, err := sign.WriteKeyPair(filepath.Join(dir, "release"), key, nil)
			if err != nil {
				t.Fatal(err)
			}
			trustDir := filepath.Join(dir, "trust")
			if err := sign.AddTrusted(trustDir, pub, "release"); err != nil {
				t.Fatal(err)
			}
			for path, mode := range map[string]os.FileMode{files.PrivateKey: tt.keyMode, trustDir: tt.dirMode | os.ModeDir, filepath.Join(trustDir, "release.pub"): tt.pubMode} {
				if err := os.Chmod(path, mode&os.ModePerm|mode&os.ModeSticky); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() { os.Chmod(trustDir, 0o755) })
			check := func(what string, err error, want string) {
				t.Helper()
				if want == "" {
					if err != nil {
						t.Errorf("%s: %v, want it accepted", what, err)
					}
					return
				}
				if !errors.Is(err, sign.ErrInsecurePermissions) || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error = %v, want ErrInsecurePermissions naming %q", what, err, want)
				}
			}
			_, err = sign.ReadPrivateKeyFile(files.PrivateKey, nil)
			check("ReadPrivateKeyFile", err, tt.wantKey)
			_, err = sign.LoadTrust(trustDir)
			check("LoadTrust", err, tt.wantDir)
		})
	}
}
