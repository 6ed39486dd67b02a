// Package secret encrypts and decrypts values files with age
// (https://age-encryption.org), to recipients' public keys or to a
// passphrase. Decryption happens in memory only, and no error carries
// plaintext.
package secret

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/skiffhq/skiff/internal/sign"
)

// Sentinel errors, for errors.Is.
var (
	// ErrNoMatchingIdentity: none of the identities can decrypt the file.
	ErrNoMatchingIdentity = errors.New("no identity matches the encrypted file")
	// ErrWrongPassphrase: the passphrase does not decrypt the file.
	ErrWrongPassphrase = errors.New("wrong passphrase for the encrypted file")
	// ErrPassphraseRequired: the file is passphrase-encrypted and no passphrase was given.
	ErrPassphraseRequired = errors.New("file is encrypted with a passphrase, and none was given")
	// ErrNotEncrypted: the input is not an age file.
	ErrNotEncrypted = errors.New("input is not an age-encrypted file")
	// ErrCorrupt: the encrypted file is damaged or was altered.
	ErrCorrupt = errors.New("encrypted file is damaged or was altered")
	// ErrTooLarge: the plaintext exceeds DecryptOptions.MaxSize.
	ErrTooLarge = errors.New("decrypted data is too large")
)

const (
	binaryHeader = "age-encryption.org/v1\n"
	// DefaultMaxSize bounds the plaintext Decrypt holds in memory.
	DefaultMaxSize = 64 << 20
	// maxWorkFactor is the largest scrypt work factor (2^n) Decrypt accepts:
	// 256 MiB and about a second.
	maxWorkFactor = 18
)

// workFactor is the scrypt work factor (2^n) of passphrase encryption.
// Tests lower it.
var workFactor = 18

// EncryptOptions configures Encrypt. Exactly one of Recipients and
// Passphrase must be set.
type EncryptOptions struct {
	// Recipients are age public keys ("age1...", or post-quantum
	// "age1pq1...") or paths of recipients files holding one per line
	// ("#" comments allowed).
	Recipients []string
	// Passphrase encrypts with scrypt instead of public keys.
	Passphrase []byte
}

// Encrypt reads plaintext and writes it, age-encrypted and ASCII-armored, to w.
func Encrypt(w io.Writer, plaintext io.Reader, o EncryptOptions) error {
	var recipients []age.Recipient
	switch {
	case len(o.Recipients) > 0 && len(o.Passphrase) > 0:
		return errors.New("encrypting: both recipients and a passphrase given: use one or the other")
	case len(o.Passphrase) > 0:
		r, err := age.NewScryptRecipient(string(o.Passphrase))
		if err != nil {
			return fmt.Errorf("encrypting: %w", err)
		}
		r.SetWorkFactor(workFactor)
		recipients = []age.Recipient{r}
	case len(o.Recipients) > 0:
		for _, s := range o.Recipients {
			rs, err := parseRecipients(s)
			if err != nil {
				return fmt.Errorf("encrypting: %w", err)
			}
			recipients = append(recipients, rs...)
		}
	default:
		return errors.New("encrypting: no recipients: give an age public key (age1...), a recipients file, or a passphrase")
	}
	aw := armor.NewWriter(w)
	ew, err := age.Encrypt(aw, recipients...)
	if err != nil {
		return fmt.Errorf("encrypting: %w", err)
	}
	if _, err := io.Copy(ew, plaintext); err != nil {
		return fmt.Errorf("encrypting: %w", err)
	}
	if err := ew.Close(); err != nil {
		return fmt.Errorf("encrypting: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("encrypting: %w", err)
	}
	return nil
}

// parseRecipients parses an age public key, or else reads a recipients file.
func parseRecipients(s string) ([]age.Recipient, error) {
	if strings.HasPrefix(s, "age1") && !strings.ContainsAny(s, `/\`) {
		rs, err := age.ParseRecipients(strings.NewReader(s))
		if err != nil {
			return nil, fmt.Errorf("invalid recipient %q: %v: an age public key starts with age1", s, err)
		}
		return rs, nil
	}
	f, err := os.Open(s)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("recipient %q is neither an age public key (age1...) nor an existing recipients file", s)
	}
	if err != nil {
		return nil, fmt.Errorf("reading recipients file: %w", err)
	}
	defer f.Close()
	rs, err := age.ParseRecipients(f)
	if err != nil {
		// age does not echo the line: it may be a private key.
		return nil, fmt.Errorf("recipients file %s: %v: it should hold age1... public keys, one a line", s, err)
	}
	return rs, nil
}

// DecryptOptions configures Decrypt.
type DecryptOptions struct {
	// IdentityFiles are age identity files (AGE-SECRET-KEY-1... lines).
	IdentityFiles []string
	// Passphrase is called, once, only if the file is passphrase-encrypted.
	Passphrase func() ([]byte, error)
	// MaxSize bounds the plaintext size; if ≤ 0, DefaultMaxSize is used.
	MaxSize int64
}

// Decrypt decrypts an age file, armored or binary, into memory. On error it
// returns no plaintext, and the error never contains any.
func Decrypt(r io.Reader, o DecryptOptions) ([]byte, error) {
	maxSize := o.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	br := bufio.NewReader(r)
	src, err := sourceReader(br)
	if err != nil {
		return nil, err
	}
	var ids []age.Identity
	for _, path := range o.IdentityFiles {
		fids, err := readIdentities(path)
		if err != nil {
			return nil, err
		}
		ids = append(ids, fids...)
	}
	lazy := &lazyScrypt{passphrase: o.Passphrase}
	ids = append(ids, lazy)

	pr, err := age.Decrypt(src, ids...)
	if err != nil {
		return nil, decryptError(err, lazy, o.IdentityFiles)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(pr, maxSize+1))
	if err != nil {
		clear(buf.Bytes())
		return nil, fmt.Errorf("%w: get an intact copy of the file", ErrCorrupt)
	}
	if n > maxSize {
		clear(buf.Bytes())
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxSize)
	}
	return buf.Bytes(), nil
}

// sourceReader returns the age binary stream of br, unwrapping ASCII armor.
func sourceReader(br *bufio.Reader) (io.Reader, error) {
	peek, _ := br.Peek(len(armor.Header) + 1024)
	trimmed := bytes.TrimLeft(peek, " \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte(armor.Header)):
		return armor.NewReader(br), nil
	case bytes.HasPrefix(peek, []byte(binaryHeader)):
		return br, nil
	}
	return nil, fmt.Errorf("%w: it has neither the %q armor nor the binary age header", ErrNotEncrypted, armor.Header)
}

func readIdentities(path string) ([]age.Identity, error) {
	if err := sign.CheckPrivateFile(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading identity file: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		// age keeps key material out of its errors.
		return nil, fmt.Errorf("identity file %s: %v: it should hold AGE-SECRET-KEY-1... lines", path, err)
	}
	return ids, nil
}

func decryptError(err error, lazy *lazyScrypt, files []string) error {
	var noMatch *age.NoIdentityMatchError
	switch {
	case lazy.err != nil:
		return lazy.err
	case errors.As(err, &noMatch):
		if len(files) == 0 {
			return fmt.Errorf("%w: the file is encrypted to public keys: pass the matching identity file", ErrNoMatchingIdentity)
		}
		return fmt.Errorf("%w: the file is not encrypted to any key in %s: pass the identity file whose public key it was encrypted to",
			ErrNoMatchingIdentity, strings.Join(files, ", "))
	case strings.HasPrefix(err.Error(), "failed to read header"):
		return fmt.Errorf("%w: invalid header: %v", ErrCorrupt, err)
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}

// lazyScrypt is an identity that asks for the passphrase only when the file
// is passphrase-encrypted.
type lazyScrypt struct {
	passphrase func() ([]byte, error)
	err        error // the decisive failure, if any
}

var _ age.Identity = (*lazyScrypt)(nil)

func (l *lazyScrypt) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	if len(stanzas) != 1 || stanzas[0].Type != "scrypt" {
		return nil, age.ErrIncorrectIdentity
	}
	if l.passphrase == nil {
		l.err = fmt.Errorf("%w: supply the passphrase", ErrPassphraseRequired)
		return nil, l.err
	}
	pass, err := l.passphrase()
	if err != nil {
		l.err = fmt.Errorf("reading passphrase: %w", err)
		return nil, l.err
	}
	id, err := age.NewScryptIdentity(string(pass))
	if err != nil {
		l.err = fmt.Errorf("%w: %v", ErrWrongPassphrase, err)
		return nil, l.err
	}
	id.SetMaxWorkFactor(maxWorkFactor)
	key, err := id.Unwrap(stanzas)
	if errors.Is(err, age.ErrIncorrectIdentity) {
		l.err = fmt.Errorf("%w: try again", ErrWrongPassphrase)
		return nil, l.err
	}
	if err != nil {
		l.err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		return nil, l.err
	}
	return key, nil
}

// IsEncrypted reports whether data starts like an age file, armored
// (leading whitespace allowed) or binary.
func IsEncrypted(data []byte) bool {
	return bytes.HasPrefix(data, []byte(binaryHeader)) ||
		bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header))
}

// GenerateIdentity returns a new X25519 identity ("AGE-SECRET-KEY-1...")
// and its recipient ("age1...").
func GenerateIdentity() (identity, recipient string) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic("secret: generating identity: " + err.Error())
	}
	return id.String(), id.Recipient().String()
}
