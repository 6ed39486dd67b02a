package secret

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/skiffhq/skiff/internal/sign"
)

func init() { workFactor = 12 } // fast tests; Decrypt still accepts 18

const plaintext = "db:\n  password: hunter2-very-secret\n"

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func encrypt(t *testing.T, o EncryptOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encrypt(&buf, strings.NewReader(plaintext), o); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func passphrase(s string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(s), nil }
}

func TestRoundTrip(t *testing.T) {
	id1, rcpt1 := GenerateIdentity()
	id2, rcpt2 := GenerateIdentity()
	if !strings.HasPrefix(id1, "AGE-SECRET-KEY-1") || !strings.HasPrefix(rcpt1, "age1") {
		t.Fatalf("GenerateIdentity = %q, %q", id1, rcpt1)
	}
	idFile1 := writeFile(t, "id1.txt", "# created by test\n"+id1+"\n")
	idFile2 := writeFile(t, "id2.txt", id2+"\n")
	rcptFile := writeFile(t, "recipients.txt", "# team\n"+rcpt2+"\n")

	tests := []struct {
		name string
		enc  EncryptOptions
		dec  DecryptOptions
	}{
		{"recipient", EncryptOptions{Recipients: []string{rcpt1}}, DecryptOptions{IdentityFiles: []string{idFile1}}},
		{"recipients file", EncryptOptions{Recipients: []string{rcptFile}}, DecryptOptions{IdentityFiles: []string{idFile2}}},
		{"two recipients, second identity", EncryptOptions{Recipients: []string{rcpt1, rcptFile}}, DecryptOptions{IdentityFiles: []string{idFile2}}},
		{"identity among several", EncryptOptions{Recipients: []string{rcpt2}}, DecryptOptions{IdentityFiles: []string{idFile1, idFile2}}},
		{"passphrase", EncryptOptions{Passphrase: []byte("open sesame")}, DecryptOptions{Passphrase: passphrase("open sesame"), IdentityFiles: []string{idFile1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := encrypt(t, tt.enc)
			if !bytes.HasPrefix(ct, []byte("-----BEGIN AGE ENCRYPTED FILE-----\n")) {
				t.Errorf("output is not armored: %q", ct[:min(len(ct), 40)])
			}
			if bytes.Contains(ct, []byte("hunter2")) {
				t.Fatal("ciphertext contains plaintext")
			}
			if !IsEncrypted(ct) {
				t.Error("IsEncrypted(ciphertext) = false")
			}
			tt.dec.Passphrase = failIfCalled(t, tt.dec.Passphrase, tt.enc.Passphrase == nil)
			got, err := Decrypt(bytes.NewReader(ct), tt.dec)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != plaintext {
				t.Errorf("Decrypt = %q, want %q", got, plaintext)
			}
		})
	}
}

// failIfCalled wraps f so that calling it fails the test when mustNot.
func failIfCalled(t *testing.T, f func() ([]byte, error), mustNot bool) func() ([]byte, error) {
	return func() ([]byte, error) {
		if mustNot {
			t.Error("passphrase requested for a file without passphrase")
		}
		if f == nil {
			return nil, errors.New("no passphrase")
		}
		return f()
	}
}

func TestDecryptBinary(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(plaintext))
	w.Close()
	if !IsEncrypted(buf.Bytes()) {
		t.Error("IsEncrypted(binary) = false")
	}
	got, err := Decrypt(bytes.NewReader(buf.Bytes()), DecryptOptions{IdentityFiles: []string{writeFile(t, "id", id.String())}})
	if err != nil || string(got) != plaintext {
		t.Errorf("Decrypt = %q, %v", got, err)
	}
}

func TestDecryptErrors(t *testing.T) {
	id1, rcpt1 := GenerateIdentity()
	id2, _ := GenerateIdentity()
	idFile1 := writeFile(t, "id1", id1)
	idFile2 := writeFile(t, "id2", id2)
	toKey := encrypt(t, EncryptOptions{Recipients: []string{rcpt1}})
	toPass := encrypt(t, EncryptOptions{Passphrase: []byte("right")})

	// Flip a byte in the armored body of the last line (the payload).
	corrupt := bytes.Clone(toKey)
	lines := bytes.Split(corrupt, []byte("\n"))
	last := lines[len(lines)-3]
	if last[0] == 'A' {
		last[0] = 'B'
	} else {
		last[0] = 'A'
	}

	tests := []struct {
		name    string
		data    []byte
		o       DecryptOptions
		wantErr error
		wantMsg string
	}{
		{"wrong identity", toKey, DecryptOptions{IdentityFiles: []string{idFile2}}, ErrNoMatchingIdentity, idFile2},
		{"no identity", toKey, DecryptOptions{}, ErrNoMatchingIdentity, "identity file"},
		{"wrong passphrase", toPass, DecryptOptions{Passphrase: passphrase("wrong")}, ErrWrongPassphrase, "wrong passphrase"},
		{"no passphrase", toPass, DecryptOptions{IdentityFiles: []string{idFile1}}, ErrPassphraseRequired, "passphrase"},
		{"not encrypted", []byte(plaintext), DecryptOptions{IdentityFiles: []string{idFile1}}, ErrNotEncrypted, "age"},
		{"corrupt payload", corrupt, DecryptOptions{IdentityFiles: []string{idFile1}}, ErrCorrupt, "damaged"},
		{"too large", toKey, DecryptOptions{IdentityFiles: []string{idFile1}, MaxSize: 4}, ErrTooLarge, "4 bytes"},
		{"truncated", toKey[:len(toKey)/2], DecryptOptions{IdentityFiles: []string{idFile1}}, ErrCorrupt, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decrypt(bytes.NewReader(tt.data), tt.o)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("got %d bytes of plaintext with an error", len(got))
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			for _, secret := range []string{"hunter2", "password", id1, id2} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks %q", err, secret)
				}
			}
		})
	}
}

func TestEncryptErrors(t *testing.T) {
	_, rcpt := GenerateIdentity()
	id, _ := GenerateIdentity()
	idAsRecipients := writeFile(t, "oops", id+"\n")
	tests := []struct {
		name    string
		o       EncryptOptions
		wantMsg string
	}{
		{"nothing", EncryptOptions{}, "no recipients"},
		{"both", EncryptOptions{Recipients: []string{rcpt}, Passphrase: []byte("x")}, "one or the other"},
		{"bad key", EncryptOptions{Recipients: []string{"age1nope"}}, "invalid recipient"},
		{"missing file", EncryptOptions{Recipients: []string{"/no/such/file"}}, "neither an age public key"},
		{"identity as recipient", EncryptOptions{Recipients: []string{idAsRecipients}}, "unknown recipient type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encrypt(&buf, strings.NewReader(plaintext), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want containing %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), id) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestIsEncrypted(t *testing.T) {
	tests := []struct {
		data string
		want bool
	}{
		{"-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n", true},
		{"\n  -----BEGIN AGE ENCRYPTED FILE-----\n", true},
		{"age-encryption.org/v1\n-> X25519 abc\n", true},
		{"replicas: 3\n", false},
		{"", false},
		{"-----BEGIN PGP MESSAGE-----\n", false},
	}
	for _, tt := range tests {
		if got := IsEncrypted([]byte(tt.data)); got != tt.want {
			t.Errorf("IsEncrypted(%q) = %v, want %v", tt.data, got, tt.want)
		}
	}
}

func FuzzDecrypt(f *testing.F) {
	id, rcpt := GenerateIdentity()
	idDir := f.TempDir()
	idFile := filepath.Join(idDir, "id")
	if err := os.WriteFile(idFile, []byte(id), 0o600); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Encrypt(&buf, strings.NewReader(plaintext), EncryptOptions{Recipients: []string{rcpt}}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	buf.Reset()
	// A low work factor keeps the seed fast.
	r, _ := age.NewScryptRecipient("pw")
	r.SetWorkFactor(10)
	w, _ := age.Encrypt(&buf, r)
	w.Write([]byte(plaintext))
	w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("age-encryption.org/v1\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 30\nAAAA\n--- AAAA\n"))
	f.Add([]byte("-----BEGIN AGE ENCRYPTED FILE-----\n-----END AGE ENCRYPTED FILE-----\n"))
	f.Add([]byte(plaintext))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decrypt(bytes.NewReader(data), DecryptOptions{
			IdentityFiles: []string{idFile},
			Passphrase:    passphrase("pw"),
			MaxSize:       1 << 20,
		})
		if err != nil {
			if got != nil {
				t.Fatal("plaintext returned with an error")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks plaintext: %v", err)
			}
		}
	})
}

func TestDecryptRefusesIdentityReadableByOthers(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no file modes on Windows")
	}
	id, rcpt := GenerateIdentity()
	idFile := writeFile(t, "id", id)
	if err := os.Chmod(idFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Decrypt(bytes.NewReader(encrypt(t, EncryptOptions{Recipients: []string{rcpt}})), DecryptOptions{IdentityFiles: []string{idFile}})
	if !errors.Is(err, sign.ErrInsecurePermissions) || !strings.Contains(err.Error(), "chmod 600 "+idFile) {
		t.Errorf("Decrypt error = %v, want ErrInsecurePermissions naming chmod 600", err)
	}
}
