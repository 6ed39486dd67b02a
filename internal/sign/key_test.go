package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func mustKey(t testing.TB) *PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func passphrase(s string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(s), nil }
}

func TestKeyID(t *testing.T) {
	k := mustKey(t)
	id := k.Public().ID()
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("key ID %q, want sha256:<64 hex>", id)
	}
	pemBytes, err := MarshalPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := pub.ID(); got != id {
		t.Errorf("ID after round trip = %s, want %s", got, id)
	}
	if !pub.Equal(k.Public()) {
		t.Error("parsed public key differs")
	}
	if other := mustKey(t); other.ID() == id {
		t.Error("two keys share an ID")
	}
}

func TestPrivateKeyRoundTrip(t *testing.T) {
	k := mustKey(t)
	tests := []struct {
		name       string
		passphrase []byte
		pemType    string
	}{
		{"plain", nil, "PRIVATE KEY"},
		{"encrypted", []byte("correct horse"), "ENCRYPTED SKIFF PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := MarshalPrivateKey(k, tt.passphrase)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(data)
			if block == nil || block.Type != tt.pemType {
				t.Fatalf("PEM block %v, want type %q", block, tt.pemType)
			}
			called := false
			got, err := ParsePrivateKey(data, func() ([]byte, error) {
				called = true
				return tt.passphrase, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if called != (tt.passphrase != nil) {
				t.Errorf("passphrase called = %v, want %v", called, tt.passphrase != nil)
			}
			if got.ID() != k.ID() {
				t.Errorf("ID = %s, want %s", got.ID(), k.ID())
			}
		})
	}
}

func TestEncryptedKeyErrors(t *testing.T) {
	k := mustKey(t)
	data, err := MarshalPrivateKey(k, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "PRIVATE KEY-----\nMC4C") {
		t.Fatal("encrypted key looks like plain PKCS#8")
	}
	if _, err := ParsePrivateKey(data, passphrase("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: err = %v, want ErrWrongPassphrase", err)
	}
	if _, err := ParsePrivateKey(data, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("no passphrase: err = %v, want ErrPassphraseRequired", err)
	}
	errPrompt := errors.New("no terminal")
	if _, err := ParsePrivateKey(data, func() ([]byte, error) { return nil, errPrompt }); !errors.Is(err, errPrompt) {
		t.Errorf("prompt failure: err = %v, want %v", err, errPrompt)
	}

	path := filepath.Join(t.TempDir(), "release.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadPrivateKeyFile(path, passphrase("wrong"))
	if !errors.Is(err, ErrWrongPassphrase) || err.Error() != "wrong passphrase for key "+path {
		t.Errorf("ReadPrivateKeyFile: err = %v, want %q", err, "wrong passphrase for key "+path)
	}
	if got, err := ReadPrivateKeyFile(path, passphrase("right")); err != nil || got.ID() != k.ID() {
		t.Errorf("ReadPrivateKeyFile: %v, %v", got, err)
	}

	// Headers that would make scrypt expensive are refused before it runs.
	huge := strings.Replace(string(data), "N=32768", "N=1073741824", 1)
	if _, err := ParsePrivateKey([]byte(huge), passphrase("right")); err == nil || !strings.Contains(err.Error(), "KDF-Params") {
		t.Errorf("huge N: err = %v, want KDF-Params error", err)
	}
}

func TestParseKeyErrors(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecPriv, _ := x509.MarshalPKCS8PrivateKey(ec)
	k := mustKey(t)
	privPEM, _ := MarshalPrivateKey(k, nil)
	pubPEM, _ := MarshalPublicKey(k.Public())

	pubTests := []struct {
		name, data, want string
	}{
		{"empty", "", "no PEM block"},
		{"garbage", "hello", "no PEM block"},
		{"private key", string(privPEM), "pass the .pub file"},
		{"ecdsa", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPub})), "ECDSA, not ed25519"},
		{"bad der", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "decoding public key"},
	}
	for _, tt := range pubTests {
		t.Run("public/"+tt.name, func(t *testing.T) {
			_, err := ParsePublicKey([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
	privTests := []struct {
		name, data, want string
	}{
		{"empty", "", "no PEM block"},
		{"public key", string(pubPEM), "pass the .key file"},
		{"ecdsa", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPriv})), "ECDSA, not ed25519"},
		{"bad encryption headers", "-----BEGIN ENCRYPTED SKIFF PRIVATE KEY-----\nKDF: bcrypt\n\nAAAA\n-----END ENCRYPTED SKIFF PRIVATE KEY-----\n", "only scrypt"},
	}
	for _, tt := range privTests {
		t.Run("private/"+tt.name, func(t *testing.T) {
			_, err := ParsePrivateKey([]byte(tt.data), func() ([]byte, error) {
				t.Error("passphrase requested")
				return nil, nil
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestWriteKeyPair(t *testing.T) {
	dir := t.TempDir()
	k := mustKey(t)
	base := filepath.Join(dir, "release")
	files, err := WriteKeyPair(base, k, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if files.PrivateKey != base+".key" || files.PublicKey != base+".pub" {
		t.Errorf("files = %+v", files)
	}
	for path, want := range map[string]fs.FileMode{files.PrivateKey: 0o600, files.PublicKey: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", path, got, want)
		}
	}
	priv, err := ReadPrivateKeyFile(files.PrivateKey, passphrase("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ReadPublicKeyFile(files.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if priv.ID() != k.ID() || pub.ID() != k.ID() {
		t.Errorf("IDs %s, %s, want %s", priv.ID(), pub.ID(), k.ID())
	}

	// Refuses to overwrite either file, and writes nothing then.
	before, _ := os.ReadFile(files.PrivateKey)
	if _, err := WriteKeyPair(base, mustKey(t), nil); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second write: err = %v, want fs.ErrExist", err)
	}
	after, _ := os.ReadFile(files.PrivateKey)
	if string(before) != string(after) {
		t.Error("existing key was overwritten")
	}
	if err := os.Remove(files.PrivateKey); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteKeyPair(base, mustKey(t), nil); !errors.Is(err, fs.ErrExist) {
		t.Errorf("write over .pub: err = %v, want fs.ErrExist", err)
	}
	if _, err := os.Stat(files.PrivateKey); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf(".key written although .pub exists: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func FuzzParsePrivateKey(f *testing.F) {
	k := mustKey(f)
	plain, _ := MarshalPrivateKey(k, nil)
	enc, _ := MarshalPrivateKey(k, []byte("pw"))
	pub, _ := MarshalPublicKey(k.Public())
	f.Add(plain)
	f.Add(enc)
	f.Add(pub)
	f.Add([]byte("-----BEGIN ENCRYPTED SKIFF PRIVATE KEY-----\nKDF: scrypt\nKDF-Params: N=1024,r=8,p=1\nSalt: AAAAAAAAAAAAAAAAAAAAAA==\nCipher: xchacha20-poly1305\nNonce: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\nAAAAAAAAAAAAAAAAAAAAAA==\n-----END ENCRYPTED SKIFF PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParsePrivateKey(data, passphrase("pw"))
		if err != nil {
			return
		}
		// Whatever parses, re-encodes and parses to the same key.
		again, err := MarshalPrivateKey(got, nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePrivateKey(again, nil)
		if err != nil || back.ID() != got.ID() {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	k := mustKey(f)
	pub, _ := MarshalPublicKey(k.Public())
	f.Add(pub)
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParsePublicKey(data)
		if err != nil {
			return
		}
		again, err := MarshalPublicKey(got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePublicKey(again)
		if err != nil || !back.Equal(got) || back.ID() != got.ID() {
			t.Fatalf("round trip: %v", err)
		}
	})
}
