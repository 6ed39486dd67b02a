// Package cosigntest signs images in a test registry the way `cosign
// sign --key` does: a simple-signing payload pushed as the layer of a
// manifest tagged sha256-HEX.sig, its signature in an annotation.
package cosigntest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/cosign"
)

// NewECDSAKey returns a P-256 key and its PEM public key (cosign.pub).
func NewECDSAKey(t testing.TB) (crypto.Signer, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, pubPEM(t, k.Public())
}

// NewEd25519Key returns an ed25519 key and its PEM public key.
func NewEd25519Key(t testing.TB) (crypto.Signer, []byte) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, pubPEM(t, k.Public())
}

func pubPEM(t testing.TB, k crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Sign pushes a cosign signature of the manifest d in repository repoRef
// (host/path, plain HTTP) made with key, naming signedDigest in the
// payload (normally d; another digest makes a mis-signed image).
func Sign(t testing.TB, repoRef string, d, signedDigest digest.Digest, key crypto.Signer) {
	t.Helper()
	sign(t, repoRef, d, signedDigest, key, nil)
}

// SignKeyless pushes a signature of d shaped like cosign's keyless ones:
// made with a throwaway key whose (placeholder) Fulcio certificate and
// Rekor bundle are in the layer's annotations.
func SignKeyless(t testing.TB, repoRef string, d digest.Digest) {
	t.Helper()
	key, _ := NewECDSAKey(t)
	sign(t, repoRef, d, d, key, map[string]string{
		cosign.AnnotationCertificate: "-----BEGIN CERTIFICATE-----\nMIIB (test placeholder)\n-----END CERTIFICATE-----\n",
		cosign.AnnotationBundle:      `{"SignedEntryTimestamp":"","Payload":{"logIndex":1}}`,
	})
}

// Attach pushes an OCI referrer of subject into repository repoRef: an
// artifact manifest of artifactType with data as its one layer. oras
// maintains the referrers tag (sha256-HEX) where the registry has no
// referrers API.
func Attach(t testing.TB, repoRef string, subject ocispec.Descriptor, artifactType string, data []byte) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	repo, err := remote.NewRepository(repoRef)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	layer := ocispec.Descriptor{MediaType: artifactType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := repo.Push(ctx, layer, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	empty := ocispec.DescriptorEmptyJSON
	if err := repo.Push(ctx, empty, bytes.NewReader(empty.Data)); err != nil {
		t.Fatal(err)
	}
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType,
		Config: ocispec.Descriptor{MediaType: empty.MediaType, Digest: empty.Digest, Size: empty.Size},
		Layers: []ocispec.Descriptor{layer}, Subject: &subj,
	})
	if err != nil {
		t.Fatal(err)
	}
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m)), ArtifactType: artifactType}
	if err := repo.Push(ctx, md, bytes.NewReader(m)); err != nil {
		t.Fatal(err)
	}
	return md
}

func sign(t testing.TB, repoRef string, d, signedDigest digest.Digest, key crypto.Signer, annotations map[string]string) {
	t.Helper()
	ctx := context.Background()
	repo, err := remote.NewRepository(repoRef)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	var p cosign.Payload
	p.Critical.Identity.DockerReference = repoRef
	p.Critical.Image.DockerManifestDigest = signedDigest.String()
	p.Critical.Type = cosign.PayloadType
	payload, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var sig []byte
	switch k := key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, payload)
	default:
		h := sha256.Sum256(payload)
		if sig, err = key.Sign(rand.Reader, h[:], crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	push := func(mt string, data []byte) ocispec.Descriptor {
		desc := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := repo.Push(ctx, desc, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return desc
	}
	layer := push(cosign.MediaTypeSimpleSigning, payload)
	layer.Annotations = map[string]string{cosign.AnnotationSignature: base64.StdEncoding.EncodeToString(sig)}
	for k, v := range annotations {
		layer.Annotations[k] = v
	}
	config := push("application/vnd.oci.image.config.v1+json", []byte(`{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`))
	m, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m))}
	if err := repo.PushReference(ctx, md, bytes.NewReader(m), cosign.SignatureTag(d, "sig")); err != nil {
		t.Fatal(err)
	}
}
