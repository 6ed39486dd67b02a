package sign

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/skiffhq/skiff/internal/atomicfile"
)

// Key file name suffixes written by WriteKeyPair.
const (
	PrivateKeySuffix = ".key"
	PublicKeySuffix  = ".pub"
)

// KeyPairFiles names the files written by WriteKeyPair.
type KeyPairFiles struct {
	PrivateKey string // base + ".key", mode 0600
	PublicKey  string // base + ".pub", mode 0644
}

// WriteKeyPair writes k to base+".key" (mode 0600, encrypted when passphrase
// is not empty) and its public key to base+".pub" (mode 0644). base is a path
// without suffix, such as "keys/release". Each file is written atomically; if
// either file already exists nothing is written and the error wraps
// fs.ErrExist.
func WriteKeyPair(base string, k *PrivateKey, passphrase []byte) (KeyPairFiles, error) {
	files := KeyPairFiles{PrivateKey: base + PrivateKeySuffix, PublicKey: base + PublicKeySuffix}
	priv, err := MarshalPrivateKey(k, passphrase)
	if err != nil {
		return KeyPairFiles{}, err
	}
	pub, err := MarshalPublicKey(k.Public())
	if err != nil {
		return KeyPairFiles{}, err
	}
	for _, p := range []string{files.PrivateKey, files.PublicKey} {
		if _, err := os.Lstat(p); err == nil {
			return KeyPairFiles{}, existError(p)
		}
	}
	if err := writeNew(files.PrivateKey, priv, 0o600); err != nil {
		return KeyPairFiles{}, err
	}
	if err := writeNew(files.PublicKey, pub, 0o644); err != nil {
		_ = os.Remove(files.PrivateKey)
		return KeyPairFiles{}, err
	}
	return files, nil
}

// ReadPrivateKeyFile reads and decodes the private key file at path; see
// ParsePrivateKey. A wrong passphrase gives an error that wraps
// ErrWrongPassphrase and reads "wrong passphrase for key PATH". A file
// others may read is refused ([CheckPrivateFile]).
func ReadPrivateKeyFile(path string, passphrase func() ([]byte, error)) (*PrivateKey, error) {
	if err := CheckPrivateFile(path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	k, err := ParsePrivateKey(data, passphrase)
	switch {
	case errors.Is(err, ErrWrongPassphrase):
		return nil, fmt.Errorf("%w for key %s", ErrWrongPassphrase, path)
	case err != nil:
		return nil, fmt.Errorf("reading private key %s: %w", path, err)
	}
	return k, nil
}

// ReadPublicKeyFile reads and decodes the public key file at path.
func ReadPublicKeyFile(path string) (*PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	k, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("reading public key %s: %w", path, err)
	}
	return k, nil
}

func existError(path string) error {
	return fmt.Errorf("%s: %w: choose another name or remove it first", path, fs.ErrExist)
}

// writeNew writes data to path atomically. An existing path is an error
// wrapping fs.ErrExist and is left alone.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	err := atomicfile.WriteNew(path, data, perm)
	if errors.Is(err, fs.ErrExist) {
		return existError(path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
