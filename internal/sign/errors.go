package sign

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the returned errors
// wrap them with the details (key IDs, digests, file names) and the fix.
var (
	// ErrUnsigned: the package carries no signature at all.
	ErrUnsigned = errors.New("package is not signed")
	// ErrUnknownKey: the package is signed, but only by keys that are not trusted.
	ErrUnknownKey = errors.New("package is signed only by untrusted keys")
	// ErrBadSignature: a signature by a trusted key does not verify.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrSubjectMismatch: a valid signature by a trusted key covers another package root.
	ErrSubjectMismatch = errors.New("signature is for a different package root")
	// ErrMalformedEnvelope: the signature envelope or its statement cannot be decoded.
	ErrMalformedEnvelope = errors.New("malformed signature envelope")

	// ErrWrongPassphrase: the passphrase does not decrypt the private key.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrPassphraseRequired: the private key is encrypted and no passphrase was given.
	ErrPassphraseRequired = errors.New("private key is encrypted: a passphrase is required")
)
