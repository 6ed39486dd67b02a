package sign

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// maxEnvelopeSize bounds the envelopes Verify decodes.
const maxEnvelopeSize = 4 << 20

// TrustDirEnv names the environment variable that overrides DefaultTrustDir.
const TrustDirEnv = "SKIFF_TRUST_DIR"

// TrustedKey is a public key whose signatures Verify accepts.
type TrustedKey struct {
	ID   string     // key ID, see PublicKey.ID
	Name string     // file name without ".pub"
	Path string     // file the key was loaded from; "" if not from a file
	Key  *PublicKey // the key itself
}

// Trust is a set of trusted public keys.
type Trust struct {
	dir  string
	keys []TrustedKey
	byID map[string]int
}

// NewTrust returns a Trust holding keys. Later duplicates of a key ID are
// ignored.
func NewTrust(keys ...TrustedKey) *Trust {
	t := &Trust{byID: map[string]int{}}
	for _, k := range keys {
		t.add(k)
	}
	return t
}

func (t *Trust) add(k TrustedKey) {
	if k.Key == nil {
		return
	}
	k.ID = k.Key.ID()
	if _, ok := t.byID[k.ID]; ok {
		return
	}
	t.byID[k.ID] = len(t.keys)
	t.keys = append(t.keys, k)
}

// Keys returns the trusted keys, in file name order for a loaded Trust.
func (t *Trust) Keys() []TrustedKey { return slices.Clone(t.keys) }

// Dir returns the directory t was loaded from, or "".
func (t *Trust) Dir() string { return t.dir }

// DefaultTrustDir returns $SKIFF_TRUST_DIR if set, else skiff/trust in the
// user configuration directory ($XDG_CONFIG_HOME or ~/.config on Linux).
func DefaultTrustDir() (string, error) {
	if d := os.Getenv(TrustDirEnv); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the trust directory: %w: set %s", err, TrustDirEnv)
	}
	return filepath.Join(d, "skiff", "trust"), nil
}

// LoadTrust reads every *.pub file in dir. A missing dir gives an empty
// Trust. A file that is not an ed25519 PEM public key is an error naming it;
// a dir or key file anyone may write is refused (ErrInsecurePermissions).
func LoadTrust(dir string) (*Trust, error) {
	t := NewTrust()
	t.dir = dir
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading trust directory: %w", err)
	}
	if err := checkNotWorldWritable(dir, fi); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading trust directory: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), PublicKeySuffix)
		if !ok || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("reading trusted key: %w", err)
		}
		if err := checkNotWorldWritable(path, fi); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading trusted key: %w", err)
		}
		k, err := ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("trusted key %s: %w; fix or remove the file", path, err)
		}
		t.add(TrustedKey{Name: name, Path: path, Key: k})
	}
	return t, nil
}

var trustNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// AddTrusted decodes the PEM public key pubPEM and writes it atomically to
// dir/name.pub, creating dir. An empty name is derived from the key ID. If
// the file exists with the same key, AddTrusted does nothing; with another
// key, the error wraps fs.ErrExist.
func AddTrusted(dir string, pubPEM []byte, name string) error {
	k, err := ParsePublicKey(pubPEM)
	if err != nil {
		return fmt.Errorf("adding trusted key: %w", err)
	}
	name = strings.TrimSuffix(name, PublicKeySuffix)
	if name == "" {
		name = "key-" + strings.TrimPrefix(k.ID(), "sha256:")[:16]
	}
	if !trustNameRE.MatchString(name) {
		return fmt.Errorf("adding trusted key: invalid name %q: use letters, digits, '.', '_' and '-'", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("adding trusted key: %w", err)
	}
	path := filepath.Join(dir, name+PublicKeySuffix)
	if old, err := os.ReadFile(path); err == nil {
		if ok, _ := ParsePublicKey(old); ok.Equal(k) {
			return nil
		}
		return fmt.Errorf("adding trusted key: another key is trusted as %s: %w; choose another name or remove that file first", path, fs.ErrExist)
	}
	data, err := MarshalPublicKey(k)
	if err != nil {
		return fmt.Errorf("adding trusted key: %w", err)
	}
	if err := writeNew(path, data, 0o644); err != nil {
		return fmt.Errorf("adding trusted key: %w", err)
	}
	return nil
}

// Verified is the result of a successful Verify.
type Verified struct {
	// KeyIDs are the trusted keys with a valid signature over a statement
	// for the subject, in the order found.
	KeyIDs []string
	// Statement is the first such statement.
	Statement Statement
}

// Verify passes when at least one of envelopes holds a valid signature, by
// a trusted key, over a Skiff statement whose subject digest is subject.
// Envelopes that fail are skipped. When none passes, the error wraps the
// most specific failure: ErrSubjectMismatch, then ErrBadSignature, then
// ErrUnknownKey, then ErrMalformedEnvelope; no envelopes gives ErrUnsigned.
func (t *Trust) Verify(envelopes [][]byte, subject digest.Digest) (*Verified, error) {
	if t == nil {
		t = NewTrust()
	}
	if len(envelopes) == 0 {
		return nil, fmt.Errorf("%w: sign it with `skiff sign --key KEY ARCHIVE`, or pass --insecure-skip-signature to accept it unsigned", ErrUnsigned)
	}
	var (
		res                      Verified
		found                    bool
		mismatch, bad, malformed error // the first of each kind
		unknownIDs               []string
	)
	first := func(e *error, v error) {
		if *e == nil {
			*e = v
		}
	}
	for i, raw := range envelopes {
		n := i + 1
		env, payload, err := decodeEnvelope(raw)
		if err != nil {
			first(&malformed, malformedError(n, err))
			continue
		}
		pae := dsse.PAE(env.PayloadType, payload)
		var good []string
		for _, s := range env.Signatures {
			sig, err := decodeB64(s.Sig)
			if err != nil {
				first(&malformed, malformedError(n, fmt.Errorf("signature by %s: %w", keyLabel(s.KeyID), err)))
				continue
			}
			if s.KeyID == "" {
				// No key ID: try every trusted key.
				if id, ok := t.verifyAny(pae, sig); ok {
					good = append(good, id)
				} else {
					unknownIDs = appendNew(unknownIDs, keyLabel(""))
				}
				continue
			}
			idx, ok := t.byID[s.KeyID]
			if !ok {
				unknownIDs = appendNew(unknownIDs, s.KeyID)
				continue
			}
			k := t.keys[idx]
			if !ed25519Verify(k.Key, pae, sig) {
				first(&bad, fmt.Errorf("%w: signature %d by trusted key %s (%s) does not match what it signs: the package or its signature was altered; get an unaltered copy from its publisher",
					ErrBadSignature, n, k.ID, k.Name))
				continue
			}
			good = append(good, k.ID)
		}
		if len(good) == 0 {
			continue
		}
		st, err := decodeStatement(payload)
		if err != nil {
			first(&malformed, malformedError(n, err))
			continue
		}
		if !st.Covers(subject) {
			first(&mismatch, fmt.Errorf("%w: signature %d by %s names %s, but this package root is %s: the package index was changed after signing; get an unaltered copy, or re-sign it with `skiff sign --key KEY ARCHIVE` if you trust the change",
				ErrSubjectMismatch, n, good[0], subjectDigests(st), subject))
			continue
		}
		if !found {
			res.Statement = *st
			found = true
		}
		for _, id := range good {
			res.KeyIDs = appendNew(res.KeyIDs, id)
		}
	}
	if found {
		return &res, nil
	}
	switch {
	case mismatch != nil:
		return nil, mismatch
	case bad != nil:
		return nil, bad
	case len(unknownIDs) > 0:
		where := "the trust directory"
		if t.dir != "" {
			where = "trust directory " + t.dir
		}
		if len(t.keys) == 0 {
			where += " (it holds no keys)"
		}
		return nil, fmt.Errorf("%w: signed by %s, not in %s: if you trust the signer, add their public key with `skiff trust add KEY.pub`",
			ErrUnknownKey, strings.Join(unknownIDs, ", "), where)
	case malformed != nil:
		return nil, malformed
	}
	// Unreachable: every envelope sets one of the above.
	return nil, fmt.Errorf("%w: no usable signature", ErrMalformedEnvelope)
}

func (t *Trust) verifyAny(pae, sig []byte) (string, bool) {
	for _, k := range t.keys {
		if ed25519Verify(k.Key, pae, sig) {
			return k.ID, true
		}
	}
	return "", false
}

func ed25519Verify(k *PublicKey, pae, sig []byte) bool {
	return ed25519.Verify(k.key, pae, sig)
}

func malformedError(n int, err error) error {
	return fmt.Errorf("%w: signature %d: %v; re-sign the package with `skiff sign --key KEY ARCHIVE`", ErrMalformedEnvelope, n, err)
}

func keyLabel(id string) string {
	if id == "" {
		return "a key without key ID"
	}
	return id
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func subjectDigests(st *Statement) string {
	var ds []string
	for _, s := range st.Subject {
		keys := make([]string, 0, len(s.Digest))
		for alg := range s.Digest {
			keys = append(keys, alg)
		}
		slices.Sort(keys)
		for _, alg := range keys {
			ds = append(ds, alg+":"+s.Digest[alg])
		}
	}
	if len(ds) == 0 {
		return "no digest"
	}
	return strings.Join(ds, ", ")
}

// decodeEnvelope decodes a DSSE envelope of a Skiff signature and its payload.
func decodeEnvelope(raw []byte) (*dsse.Envelope, []byte, error) {
	if len(raw) > maxEnvelopeSize {
		return nil, nil, fmt.Errorf("envelope is %d bytes, more than the limit of %d", len(raw), maxEnvelopeSize)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, nil, fmt.Errorf("decoding DSSE envelope: %w", err)
	}
	if env.PayloadType != PayloadType {
		return nil, nil, fmt.Errorf("payload type is %q, want %q", env.PayloadType, PayloadType)
	}
	if len(env.Signatures) == 0 {
		return nil, nil, errors.New("envelope holds no signatures")
	}
	payload, err := decodeB64(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("decoding payload: %w", err)
	}
	return &env, payload, nil
}

// decodeStatement decodes a Skiff package statement.
func decodeStatement(payload []byte) (*Statement, error) {
	var st Statement
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("decoding in-toto statement: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding in-toto statement: trailing data")
	}
	if st.Type != StatementType {
		return nil, fmt.Errorf("statement type is %q, want %q", st.Type, StatementType)
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("predicate type is %q, want %q", st.PredicateType, PredicateType)
	}
	if len(st.Subject) == 0 {
		return nil, errors.New("statement has no subject")
	}
	return &st, nil
}

// decodeB64 accepts standard or URL-safe base64, padded or not, as DSSE
// allows.
func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("invalid base64")
}

// ErrNotTrusted: no trusted key has the name or ID given.
var ErrNotTrusted = errors.New("no such trusted key")

// RemoveTrusted removes the trusted key named nameOrID (its file name
// without .pub, or its key ID) from dir, and returns it. Only *.pub files
// holding a valid public key are considered, so nothing else in dir is
// ever deleted.
func RemoveTrusted(dir, nameOrID string) (TrustedKey, error) {
	t, err := LoadTrust(dir)
	if err != nil {
		return TrustedKey{}, err
	}
	for _, k := range t.Keys() {
		if k.Name == nameOrID || k.ID == nameOrID {
			if err := os.Remove(k.Path); err != nil {
				return k, fmt.Errorf("removing trusted key: %w", err)
			}
			return k, nil
		}
	}
	names := make([]string, 0, len(t.keys))
	for _, k := range t.keys {
		names = append(names, k.Name)
	}
	if len(names) == 0 {
		names = append(names, "none")
	}
	return TrustedKey{}, fmt.Errorf("%w %q in %s (trusted: %s): see skiff trust list", ErrNotTrusted, nameOrID, dir, strings.Join(names, ", "))
}
