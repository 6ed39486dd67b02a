// Package cosign checks cosign keyed image signatures with the standard
// library: the signature manifest tagged sha256-HEX.sig beside the image
// holds simple-signing JSON payloads as layers, each annotated with a
// base64 ECDSA P-256 (ASN.1, over the payload's SHA-256) or ed25519
// signature. Keyless signatures (a Fulcio certificate and a Rekor bundle
// instead of a long-lived key) are recognized, not verified.
package cosign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// Media type, annotation and payload type of cosign signatures.
const (
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	AnnotationSignature    = "dev.cosignproject.cosign/signature"
	PayloadType            = "cosign container image signature"
	// AnnotationCertificate holds the Fulcio certificate of a keyless
	// signature; AnnotationBundle its Rekor transparency-log bundle.
	AnnotationCertificate = "dev.sigstore.cosign/certificate"
	AnnotationBundle      = "dev.sigstore.cosign/bundle"
	// ArtifactTypeSigstoreBundle prefixes the artifact type of the
	// Sigstore bundles cosign 3 attaches as OCI referrers
	// (application/vnd.dev.sigstore.bundle.v0.3+json).
	ArtifactTypeSigstoreBundle = "application/vnd.dev.sigstore.bundle"
)

// maxPayload bounds a signature payload or manifest read.
const maxPayload = 4 << 20

// Errors Verify wraps.
var (
	ErrUnsigned  = errors.New("the image has no cosign signature")
	ErrMisSigned = errors.New("no cosign signature of the image verifies with the key")
	// ErrKeyless: the image's only cosign signatures are keyless ones,
	// which Verify cannot check.
	ErrKeyless = errors.New("the image has only keyless cosign signatures (Fulcio certificate, Rekor bundle), which skiff does not verify")
)

// Keyless reports whether a signature layer (of a manifest tagged
// sha256-HEX.sig) is a keyless signature: it carries a Fulcio
// certificate, and usually a Rekor bundle, instead of being made with a
// long-lived key.
func Keyless(layer ocispec.Descriptor) bool {
	return layer.Annotations[AnnotationCertificate] != ""
}

// Payload is cosign's simple-signing payload.
type Payload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// SignatureTag is the tag cosign stores an image's signatures under
// (sha256-HEX.sig); suffix "att" gives the attestations' tag.
func SignatureTag(d digest.Digest, suffix string) string {
	return d.Algorithm().String() + "-" + d.Encoded() + "." + suffix
}

// ParsePublicKey parses a PEM public key (PKIX) as cosign writes it
// (cosign.pub): ECDSA or ed25519.
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("not a PEM public key (want the cosign.pub that `cosign generate-key-pair` writes)")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing public key: %w", err)
	}
	switch k.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("public key of type %T is not supported: use an ECDSA or ed25519 key", k)
}

// Source is what Verify reads: the image's repository.
type Source interface {
	content.Resolver
	content.Fetcher
}

// Verify checks that the image of manifest digest d in repo carries a
// cosign signature made with key: one payload layer of the signature
// manifest names d and its signature verifies. It wraps ErrUnsigned when
// there is no signature manifest, ErrMisSigned when none verifies.
func Verify(ctx context.Context, repo Source, d digest.Digest, key crypto.PublicKey) error {
	tag := SignatureTag(d, "sig")
	desc, err := repo.Resolve(ctx, tag)
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%w (no tag %s)", ErrUnsigned, tag)
	}
	if err != nil {
		return fmt.Errorf("resolving signature tag %s: %w", tag, err)
	}
	if desc.Size > maxPayload {
		return fmt.Errorf("signature manifest %s is %d bytes: too large", tag, desc.Size)
	}
	raw, err := content.FetchAll(ctx, repo, desc)
	if err != nil {
		return fmt.Errorf("reading signature manifest %s: %w", tag, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("signature manifest %s: %w", tag, err)
	}
	var reasons []string
	keyless, keyed := 0, 0
	for _, l := range m.Layers {
		if l.MediaType != MediaTypeSimpleSigning {
			continue
		}
		if Keyless(l) {
			keyless++
			continue
		}
		keyed++
		sig := l.Annotations[AnnotationSignature]
		if sig == "" {
			reasons = append(reasons, "a payload has no signature annotation")
			continue
		}
		if l.Size > maxPayload {
			reasons = append(reasons, "a payload is too large")
			continue
		}
		payload, err := content.FetchAll(ctx, repo, l)
		if err != nil {
			return fmt.Errorf("reading signature payload %s: %w", l.Digest, err)
		}
		if err := check(payload, sig, d, key); err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		return nil
	}
	if keyed == 0 && keyless > 0 {
		return fmt.Errorf("%w: %s holds %d keyless signatures and none made with a key: sign it with `cosign sign --key`, or verify it with cosign's keyless checks (see docs/trust.md)", ErrKeyless, tag, keyless)
	}
	if len(reasons) == 0 {
		return fmt.Errorf("%w (%s holds no simple-signing payload)", ErrUnsigned, tag)
	}
	if keyless > 0 {
		reasons = append(reasons, fmt.Sprintf("%d keyless signatures were not checked", keyless))
	}
	return fmt.Errorf("%w: %s", ErrMisSigned, strings.Join(reasons, "; "))
}

// check verifies one payload and its base64 signature.
func check(payload []byte, sig string, d digest.Digest, key crypto.PublicKey) error {
	s, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	ok := false
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		h := sha256.Sum256(payload)
		ok = ecdsa.VerifyASN1(k, h[:], s)
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, payload, s)
	default:
		return fmt.Errorf("public key of type %T is not supported", key)
	}
	if !ok {
		return errors.New("a signature does not verify with the key")
	}
	var p Payload
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("signed payload is not simple-signing JSON: %w", err)
	}
	if p.Critical.Type != PayloadType {
		return fmt.Errorf("signed payload has type %q, want %q", p.Critical.Type, PayloadType)
	}
	if p.Critical.Image.DockerManifestDigest != d.String() {
		return fmt.Errorf("a signature is for %s, not this image", p.Critical.Image.DockerManifestDigest)
	}
	return nil
}

// KeylessSignatures counts the keyless signatures (see [Keyless]) in a
// signature manifest's bytes.
func KeylessSignatures(manifest []byte) (int, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return 0, fmt.Errorf("reading signature manifest: %w", err)
	}
	n := 0
	for _, l := range m.Layers {
		if l.MediaType == MediaTypeSimpleSigning && Keyless(l) {
			n++
		}
	}
	return n, nil
}
