package sign

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// PEM block types of key files.
const (
	pemPrivateKey          = "PRIVATE KEY"
	pemEncryptedPrivateKey = "ENCRYPTED SKIFF PRIVATE KEY"
	pemPublicKey           = "PUBLIC KEY"
)

// Parameters of encrypted private keys. The KDF parameters are written into
// the PEM headers; a reader accepts N from 2^10 to 2^18 (r=8, p=1), so a
// crafted file cannot make it allocate more than 256 MiB.
const (
	scryptLogN    = 15
	scryptR       = 8
	scryptP       = 1
	scryptMinLogN = 10
	scryptMaxLogN = 18
	saltSize      = 16
	keyAAD        = "skiff private key v1"
)

// PublicKey is an ed25519 public key that verifies package signatures.
type PublicKey struct {
	key ed25519.PublicKey
	id  string
}

// PrivateKey is an ed25519 private key that signs packages.
type PrivateKey struct {
	key ed25519.PrivateKey
	pub *PublicKey
}

// GenerateKey returns a new random ed25519 signing key.
func GenerateKey() (*PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating ed25519 key: %w", err)
	}
	return newPrivateKey(priv)
}

func newPrivateKey(priv ed25519.PrivateKey) (*PrivateKey, error) {
	pub, err := newPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &PrivateKey{key: priv, pub: pub}, nil
}

func newPublicKey(pub ed25519.PublicKey) (*PublicKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("invalid ed25519 public key length %d", len(pub))
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &PublicKey{key: pub, id: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// Public returns the public half of k.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// ID returns the key ID of the public half of k.
func (k *PrivateKey) ID() string { return k.pub.id }

// ID returns the key ID: "sha256:" followed by the lowercase hex SHA-256 of
// the key's PKIX (SubjectPublicKeyInfo) DER encoding, the same bytes that the
// PEM "PUBLIC KEY" file holds. It is the keyid of DSSE signatures.
func (p *PublicKey) ID() string { return p.id }

// Equal reports whether p and q are the same key.
func (p *PublicKey) Equal(q *PublicKey) bool {
	return p != nil && q != nil && p.key.Equal(q.key)
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY" block (PKIX).
func MarshalPublicKey(pub *PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub.key)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// ParsePublicKey decodes a PEM "PUBLIC KEY" block holding an ed25519 key.
func ParsePublicKey(data []byte) (*PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found: a public key file starts with -----BEGIN PUBLIC KEY-----")
	}
	if block.Type != pemPublicKey {
		return nil, fmt.Errorf("PEM block is %q, not %q: pass the .pub file of the key pair", block.Type, pemPublicKey)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("decoding public key: %w", err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %s, not ed25519: skiff signs with ed25519 keys only", keyType(key))
	}
	return newPublicKey(pub)
}

// MarshalPrivateKey encodes k as PEM. With an empty passphrase it writes an
// unencrypted PKCS#8 "PRIVATE KEY" block. Otherwise it writes an
// "ENCRYPTED SKIFF PRIVATE KEY" block: the PKCS#8 DER sealed with
// XChaCha20-Poly1305 under a key derived by scrypt (N=2^15, r=8, p=1) from
// the passphrase and a random salt; the KDF parameters, salt and nonce are
// PEM headers.
func MarshalPrivateKey(k *PrivateKey, passphrase []byte) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	if len(passphrase) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
	}
	salt := make([]byte, saltSize)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("reading random salt: %w", err)
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("reading random nonce: %w", err)
	}
	aead, err := keyAEAD(passphrase, salt, scryptLogN, scryptR, scryptP)
	if err != nil {
		return nil, err
	}
	block := &pem.Block{
		Type: pemEncryptedPrivateKey,
		Headers: map[string]string{
			"KDF":        "scrypt",
			"KDF-Params": fmt.Sprintf("N=%d,r=%d,p=%d", 1<<scryptLogN, scryptR, scryptP),
			"Salt":       base64.StdEncoding.EncodeToString(salt),
			"Cipher":     "xchacha20-poly1305",
			"Nonce":      base64.StdEncoding.EncodeToString(nonce),
		},
		Bytes: aead.Seal(nil, nonce, der, []byte(keyAAD)),
	}
	return pem.EncodeToMemory(block), nil
}

// ParsePrivateKey decodes a private key written by MarshalPrivateKey.
// passphrase is called only when the key is encrypted; if it is nil then,
// the error is ErrPassphraseRequired. A passphrase that does not decrypt the
// key gives ErrWrongPassphrase.
func ParsePrivateKey(data []byte, passphrase func() ([]byte, error)) (*PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found: a private key file starts with -----BEGIN PRIVATE KEY-----")
	}
	der := block.Bytes
	switch block.Type {
	case pemPrivateKey:
	case pemEncryptedPrivateKey:
		var err error
		if der, err = decryptKeyBlock(block, passphrase); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("PEM block is %q, not %q: pass the .key file of the key pair", block.Type, pemPrivateKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("decoding private key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %s, not ed25519: skiff signs with ed25519 keys only", keyType(key))
	}
	return newPrivateKey(priv)
}

func decryptKeyBlock(block *pem.Block, passphrase func() ([]byte, error)) ([]byte, error) {
	h := block.Headers
	if h["KDF"] != "scrypt" || h["Cipher"] != "xchacha20-poly1305" {
		return nil, fmt.Errorf("encrypted private key uses KDF %q and cipher %q: only scrypt with xchacha20-poly1305 is supported", h["KDF"], h["Cipher"])
	}
	logN, r, p, err := parseScryptParams(h["KDF-Params"])
	if err != nil {
		return nil, err
	}
	salt, err := base64.StdEncoding.DecodeString(h["Salt"])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return nil, errors.New("encrypted private key has an invalid Salt header")
	}
	nonce, err := base64.StdEncoding.DecodeString(h["Nonce"])
	if err != nil || len(nonce) != chacha20poly1305.NonceSizeX {
		return nil, errors.New("encrypted private key has an invalid Nonce header")
	}
	if len(block.Bytes) < chacha20poly1305.Overhead {
		return nil, errors.New("encrypted private key is truncated")
	}
	if passphrase == nil {
		return nil, ErrPassphraseRequired
	}
	pass, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("reading passphrase: %w", err)
	}
	aead, err := keyAEAD(pass, salt, logN, r, p)
	if err != nil {
		return nil, err
	}
	der, err := aead.Open(nil, nonce, block.Bytes, []byte(keyAAD))
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return der, nil
}

// parseScryptParams parses "N=32768,r=8,p=1" within the accepted bounds.
func parseScryptParams(s string) (logN, r, p int, err error) {
	bad := fmt.Errorf("encrypted private key has invalid KDF-Params %q: want N=2^%d..2^%d,r=%d,p=%d", s, scryptMinLogN, scryptMaxLogN, scryptR, scryptP)
	var n uint64
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return 0, 0, 0, bad
		}
		seen[k] = true
		x, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0, 0, 0, bad
		}
		switch k {
		case "N":
			n = x
		case "r":
			r = int(x)
		case "p":
			p = int(x)
		default:
			return 0, 0, 0, bad
		}
	}
	if n == 0 || n&(n-1) != 0 || r != scryptR || p != scryptP {
		return 0, 0, 0, bad
	}
	logN = bits.TrailingZeros64(n)
	if logN < scryptMinLogN || logN > scryptMaxLogN {
		return 0, 0, 0, bad
	}
	return logN, r, p, nil
}

func keyAEAD(passphrase, salt []byte, logN, r, p int) (cipher.AEAD, error) {
	k, err := scrypt.Key(passphrase, salt, 1<<logN, r, p, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("deriving key from passphrase: %w", err)
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	return aead, nil
}

func keyType(key any) string {
	switch key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PublicKey, *ecdsa.PrivateKey:
		return "ECDSA"
	case *ecdh.PublicKey, *ecdh.PrivateKey:
		return "ECDH"
	}
	return fmt.Sprintf("%T", key)
}
