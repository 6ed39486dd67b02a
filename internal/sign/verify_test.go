package sign

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

var (
	rootDigest  = digest.FromString("package root")
	otherDigest = digest.FromString("another root")
)

type predicate struct {
	Images []string `json:"images"`
}

func mustSign(t testing.TB, k *PrivateKey, d digest.Digest) []byte {
	t.Helper()
	env, err := Sign(context.Background(), k, Subject{Name: "demo:1.0.0", Digest: d}, predicate{Images: []string{"nginx:1.27"}})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// signRaw signs an arbitrary payload, to build envelopes Sign would not.
func signRaw(t testing.TB, k *PrivateKey, payloadType string, payload []byte, keyID string) []byte {
	t.Helper()
	sig := ed25519.Sign(k.key, dsse.PAE(payloadType, payload))
	env := dsse.Envelope{
		PayloadType: payloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures:  []dsse.Signature{{KeyID: keyID, Sig: base64.StdEncoding.EncodeToString(sig)}},
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func editEnvelope(t testing.TB, raw []byte, edit func(*dsse.Envelope)) []byte {
	t.Helper()
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	edit(&env)
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignStatement(t *testing.T) {
	k := mustKey(t)
	raw := mustSign(t, k, rootDigest)
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != "application/vnd.in-toto+json" {
		t.Errorf("payloadType = %q", env.PayloadType)
	}
	if len(env.Signatures) != 1 || env.Signatures[0].KeyID != k.ID() {
		t.Errorf("signatures = %+v, want one with keyid %s", env.Signatures, k.ID())
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	want := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"demo:1.0.0","digest":{"sha256":"` +
		rootDigest.Encoded() + `"}}],"predicateType":"https://skiff.dev/package/v1","predicate":{"images":["nginx:1.27"]}}`
	if string(payload) != want {
		t.Errorf("payload =\n%s\nwant\n%s", payload, want)
	}
	info, err := Inspect(raw)
	if err != nil || len(info.KeyIDs) != 1 || info.KeyIDs[0] != k.ID() || !info.Statement.Covers(rootDigest) {
		t.Errorf("Inspect = %+v, %v", info, err)
	}

	for _, s := range []Subject{{Name: "", Digest: rootDigest}, {Name: "x:1", Digest: "sha256:zz"}} {
		if _, err := Sign(context.Background(), k, s, nil); err == nil {
			t.Errorf("Sign(%+v) succeeded", s)
		}
	}
}

func TestVerify(t *testing.T) {
	trusted := mustKey(t)
	stranger := mustKey(t)
	trust := NewTrust(TrustedKey{Name: "release", Key: trusted.Public()})
	good := mustSign(t, trusted, rootDigest)

	tampered := editEnvelope(t, good, func(e *dsse.Envelope) {
		p, _ := base64.StdEncoding.DecodeString(e.Payload)
		p = []byte(strings.Replace(string(p), "nginx", "evil!", 1))
		e.Payload = base64.StdEncoding.EncodeToString(p)
	})
	badSigB64 := editEnvelope(t, good, func(e *dsse.Envelope) { e.Signatures[0].Sig = "%%%" })
	noKeyID := editEnvelope(t, good, func(e *dsse.Envelope) { e.Signatures[0].KeyID = "" })
	noKeyIDStranger := editEnvelope(t, mustSign(t, stranger, rootDigest), func(e *dsse.Envelope) { e.Signatures[0].KeyID = "" })
	urlB64 := editEnvelope(t, good, func(e *dsse.Envelope) {
		p, _ := base64.StdEncoding.DecodeString(e.Payload)
		e.Payload = base64.RawURLEncoding.EncodeToString(p)
	})
	notStatement := signRaw(t, trusted, PayloadType, []byte(`{"hello":"world"}`), trusted.ID())
	otherPredicate := signRaw(t, trusted, PayloadType, []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"`+
		rootDigest.Encoded()+`"}}],"predicateType":"https://slsa.dev/provenance/v1"}`), trusted.ID())
	otherPayloadType := signRaw(t, trusted, "text/plain", []byte("x"), trusted.ID())

	tests := []struct {
		name      string
		envelopes [][]byte
		trust     *Trust
		wantErr   error
		wantInMsg []string
	}{
		{name: "valid", envelopes: [][]byte{good}},
		{name: "valid without keyid", envelopes: [][]byte{noKeyID}},
		{name: "valid url base64 payload", envelopes: [][]byte{urlB64}},
		{name: "unsigned", envelopes: nil, wantErr: ErrUnsigned,
			wantInMsg: []string{"package is not signed: sign it with `skiff sign --key KEY ARCHIVE`, or pass --insecure-skip-signature to accept it unsigned"}},
		{name: "unknown key", envelopes: [][]byte{mustSign(t, stranger, rootDigest)}, wantErr: ErrUnknownKey,
			wantInMsg: []string{stranger.ID(), "skiff trust add KEY.pub"}},
		{name: "unknown key, empty trust", envelopes: [][]byte{good}, trust: NewTrust(), wantErr: ErrUnknownKey,
			wantInMsg: []string{trusted.ID(), "holds no keys"}},
		{name: "unknown key without keyid", envelopes: [][]byte{noKeyIDStranger}, wantErr: ErrUnknownKey,
			wantInMsg: []string{"without key ID"}},
		{name: "tampered payload", envelopes: [][]byte{tampered}, wantErr: ErrBadSignature,
			wantInMsg: []string{trusted.ID(), "release", "altered"}},
		{name: "subject mismatch", envelopes: [][]byte{mustSign(t, trusted, otherDigest)}, wantErr: ErrSubjectMismatch,
			wantInMsg: []string{otherDigest.String(), rootDigest.String(), "changed after signing"}},
		{name: "not json", envelopes: [][]byte{[]byte("{")}, wantErr: ErrMalformedEnvelope},
		{name: "no signatures", envelopes: [][]byte{editEnvelope(t, good, func(e *dsse.Envelope) { e.Signatures = nil })}, wantErr: ErrMalformedEnvelope,
			wantInMsg: []string{"no signatures"}},
		{name: "bad signature base64", envelopes: [][]byte{badSigB64}, wantErr: ErrMalformedEnvelope},
		{name: "bad payload base64", envelopes: [][]byte{editEnvelope(t, good, func(e *dsse.Envelope) { e.Payload = "!!" })}, wantErr: ErrMalformedEnvelope},
		{name: "wrong payload type", envelopes: [][]byte{otherPayloadType}, wantErr: ErrMalformedEnvelope,
			wantInMsg: []string{"text/plain"}},
		{name: "signed non-statement", envelopes: [][]byte{notStatement}, wantErr: ErrMalformedEnvelope,
			wantInMsg: []string{"statement type"}},
		{name: "signed other predicate", envelopes: [][]byte{otherPredicate}, wantErr: ErrMalformedEnvelope,
			wantInMsg: []string{"slsa"}},

		// Several envelopes: any valid one passes; otherwise the most
		// specific failure wins.
		{name: "unknown and trusted", envelopes: [][]byte{mustSign(t, stranger, rootDigest), good}},
		{name: "malformed and trusted", envelopes: [][]byte{[]byte("junk"), good}},
		{name: "tampered and trusted", envelopes: [][]byte{tampered, good}},
		{name: "malformed and unknown", envelopes: [][]byte{[]byte("junk"), mustSign(t, stranger, rootDigest)}, wantErr: ErrUnknownKey},
		{name: "unknown and tampered", envelopes: [][]byte{mustSign(t, stranger, rootDigest), tampered}, wantErr: ErrBadSignature},
		{name: "tampered and mismatch", envelopes: [][]byte{tampered, mustSign(t, trusted, otherDigest)}, wantErr: ErrSubjectMismatch},
		{name: "two unknown keys", envelopes: [][]byte{mustSign(t, stranger, rootDigest), mustSign(t, mustKey(t), rootDigest)}, wantErr: ErrUnknownKey,
			wantInMsg: []string{stranger.ID(), ", sha256:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := trust
			if tt.trust != nil {
				tr = tt.trust
			}
			v, err := tr.Verify(tt.envelopes, rootDigest)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if len(v.KeyIDs) != 1 || v.KeyIDs[0] != trusted.ID() {
					t.Errorf("KeyIDs = %v, want [%s]", v.KeyIDs, trusted.ID())
				}
				if !v.Statement.Covers(rootDigest) || v.Statement.PredicateType != PredicateType {
					t.Errorf("Statement = %+v", v.Statement)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, s := range tt.wantInMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestVerifyBothKeysTrusted(t *testing.T) {
	a, b := mustKey(t), mustKey(t)
	trust := NewTrust(TrustedKey{Name: "a", Key: a.Public()}, TrustedKey{Name: "b", Key: b.Public()})
	v, err := trust.Verify([][]byte{mustSign(t, a, rootDigest), mustSign(t, b, rootDigest), mustSign(t, a, rootDigest)}, rootDigest)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.KeyIDs) != 2 || v.KeyIDs[0] != a.ID() || v.KeyIDs[1] != b.ID() {
		t.Errorf("KeyIDs = %v, want [%s %s]", v.KeyIDs, a.ID(), b.ID())
	}
}

func TestLoadTrust(t *testing.T) {
	dir := t.TempDir()
	a, b := mustKey(t), mustKey(t)
	for name, k := range map[string]*PrivateKey{"alice": a, "bob": b} {
		p, _ := MarshalPublicKey(k.Public())
		if err := os.WriteFile(filepath.Join(dir, name+".pub"), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Ignored: other suffixes, hidden files, directories.
	os.WriteFile(filepath.Join(dir, "README"), []byte("not a key"), 0o644)
	os.WriteFile(filepath.Join(dir, ".tmp.pub"), []byte("partial"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub.pub"), 0o755)

	trust, err := LoadTrust(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := trust.Keys()
	if len(keys) != 2 || keys[0].Name != "alice" || keys[0].ID != a.ID() || keys[1].Name != "bob" || keys[1].ID != b.ID() {
		t.Fatalf("Keys = %+v", keys)
	}
	if _, err := trust.Verify([][]byte{mustSign(t, b, rootDigest)}, rootDigest); err != nil {
		t.Errorf("Verify with loaded trust: %v", err)
	}

	bad := filepath.Join(dir, "broken.pub")
	os.WriteFile(bad, []byte("garbage"), 0o644)
	if _, err := LoadTrust(dir); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad file: err = %v, want naming %s", err, bad)
	}

	empty, err := LoadTrust(filepath.Join(dir, "missing"))
	if err != nil || len(empty.Keys()) != 0 {
		t.Errorf("missing dir: %v, %v", empty.Keys(), err)
	}
}

func TestAddTrusted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trust")
	k := mustKey(t)
	pub, _ := MarshalPublicKey(k.Public())
	if err := AddTrusted(dir, pub, "release.pub"); err != nil {
		t.Fatal(err)
	}
	if err := AddTrusted(dir, pub, "release"); err != nil {
		t.Errorf("adding the same key again: %v", err)
	}
	other, _ := MarshalPublicKey(mustKey(t).Public())
	if err := AddTrusted(dir, other, "release"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("other key under taken name: err = %v, want fs.ErrExist", err)
	}
	if err := AddTrusted(dir, other, ""); err != nil {
		t.Errorf("derived name: %v", err)
	}
	for _, name := range []string{"../escape", "a/b", ".hidden"} {
		if err := AddTrusted(dir, other, name); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if err := AddTrusted(dir, []byte("junk"), "junk"); err == nil {
		t.Error("junk key accepted")
	}
	trust, err := LoadTrust(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := trust.Keys()
	if len(keys) != 2 || !strings.HasPrefix(keys[0].Name, "key-") || keys[1].Name != "release" || keys[1].ID != k.ID() {
		t.Errorf("Keys = %+v", keys)
	}
	fi, err := os.Stat(filepath.Join(dir, "release.pub"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("release.pub: %v, %v", fi, err)
	}
}

func TestDefaultTrustDir(t *testing.T) {
	t.Setenv("SKIFF_TRUST_DIR", "/x/trust")
	if d, err := DefaultTrustDir(); err != nil || d != "/x/trust" {
		t.Errorf("with SKIFF_TRUST_DIR: %q, %v", d, err)
	}
	t.Setenv("SKIFF_TRUST_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	if d, err := DefaultTrustDir(); err != nil || d != "/cfg/skiff/trust" {
		t.Errorf("with XDG_CONFIG_HOME: %q, %v", d, err)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, err := DefaultTrustDir(); err != nil || d != "/home/u/.config/skiff/trust" {
		t.Errorf("with HOME: %q, %v", d, err)
	}
}

func FuzzVerify(f *testing.F) {
	k := mustKey(f)
	trust := NewTrust(TrustedKey{Name: "k", Key: k.Public()})
	f.Add(mustSign(f, k, rootDigest))
	f.Add(mustSign(f, k, otherDigest))
	f.Add(mustSign(f, mustKey(f), rootDigest))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[{"keyid":"","sig":""}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, envelope []byte) {
		v, err := trust.Verify([][]byte{envelope}, rootDigest)
		if err != nil {
			for _, want := range []error{ErrUnknownKey, ErrBadSignature, ErrSubjectMismatch, ErrMalformedEnvelope} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if len(v.KeyIDs) == 0 || v.KeyIDs[0] != k.ID() || !v.Statement.Covers(rootDigest) {
			t.Fatalf("accepted %+v", v)
		}
		_, _ = Inspect(envelope)
	})
}
