package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/skiffhq/skiff/internal/sign"
)

// AddSignature adds a signature to the archive at path: a signature
// manifest whose subject is the package root, with the empty config and
// one layer, envelope (a DSSE envelope, JSON). It rewrites the archive
// atomically, copying and verifying every blob; on error the archive is
// untouched. Adding an envelope the archive already holds does nothing.
func AddSignature(ctx context.Context, path string, envelope []byte) error {
	if len(envelope) == 0 || len(envelope) > maxJSON {
		return fmt.Errorf("adding a signature to %s: the envelope is %d bytes; want 1 to %d", path, len(envelope), maxJSON)
	}
	a, err := Open(path)
	if err != nil {
		return err
	}
	defer a.Close()

	root := a.Root()
	sig, env, man, err := signatureManifest(root, envelope)
	if err != nil {
		return fmt.Errorf("adding a signature to %s: %w", path, err)
	}

	var sigs []ocispec.Descriptor
	for _, m := range a.Index().Manifests {
		if m.ArtifactType != ArtifactTypeSignature {
			continue
		}
		if m.Digest == sig.Digest {
			return nil // already signed with this envelope
		}
		sigs = append(sigs, m)
	}

	mem := blobMap{
		ocispec.DescriptorEmptyJSON.Digest: ocispec.DescriptorEmptyJSON.Data,
		env.Digest:                         envelope,
		sig.Digest:                         man,
	}
	src := union{mem, a}
	omit := func(d digest.Digest) bool { return !a.Has(d) && mem[d] == nil }
	if _, err := Write(ctx, src, root, path, WriteOptions{Signatures: append(sigs, sig), Omit: omit}); err != nil {
		return fmt.Errorf("adding a signature: %w", err)
	}
	return nil
}

// blobMap is a read-only storage of a few blobs keyed by digest.
type blobMap map[digest.Digest][]byte

func (m blobMap) Fetch(_ context.Context, target ocispec.Descriptor) (io.ReadCloser, error) {
	b, ok := m[target.Digest]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", target.Digest, errdef.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m blobMap) Exists(_ context.Context, target ocispec.Descriptor) (bool, error) {
	_, ok := m[target.Digest]
	return ok, nil
}

// union reads from the first storage holding a blob.
type union []content.ReadOnlyStorage

func (u union) Fetch(ctx context.Context, target ocispec.Descriptor) (io.ReadCloser, error) {
	for _, s := range u {
		if ok, err := s.Exists(ctx, target); err == nil && ok {
			return s.Fetch(ctx, target)
		}
	}
	return nil, fmt.Errorf("blob %s: %w", target.Digest, errdef.ErrNotFound)
}

func (u union) Exists(ctx context.Context, target ocispec.Descriptor) (bool, error) {
	for _, s := range u {
		if ok, err := s.Exists(ctx, target); err == nil && ok {
			return true, nil
		}
	}
	return false, nil
}

// signatureManifest builds the signature manifest for envelope over root.
func signatureManifest(root ocispec.Descriptor, envelope []byte) (sig, env ocispec.Descriptor, man []byte, err error) {
	env = content.NewDescriptorFromBytes(MediaTypeDSSE, envelope)
	man, err = json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactTypeSignature,
		Config:       ocispec.DescriptorEmptyJSON,
		Layers:       []ocispec.Descriptor{env},
		Subject: &ocispec.Descriptor{
			MediaType:    root.MediaType,
			ArtifactType: root.ArtifactType,
			Digest:       root.Digest,
			Size:         root.Size,
		},
	})
	if err != nil {
		return sig, env, nil, fmt.Errorf("encoding the signature manifest: %w", err)
	}
	sig = content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, man)
	sig.ArtifactType = ArtifactTypeSignature
	return sig, env, man, nil
}

// PushSignature pushes a signature manifest for envelope over root (and
// its blobs) into dst, for a [Write] with WriteOptions.Signatures. It is
// how a build signs without rewriting the archive afterwards.
func PushSignature(ctx context.Context, dst Store, root ocispec.Descriptor, envelope []byte) (ocispec.Descriptor, error) {
	if len(envelope) == 0 || len(envelope) > maxJSON {
		return ocispec.Descriptor{}, fmt.Errorf("signature envelope is %d bytes; want 1 to %d", len(envelope), maxJSON)
	}
	sig, env, man, err := signatureManifest(root, envelope)
	if err != nil {
		return sig, err
	}
	for _, b := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{ocispec.DescriptorEmptyJSON, ocispec.DescriptorEmptyJSON.Data}, {env, envelope}, {sig, man}} {
		ok, err := dst.Exists(ctx, b.d)
		if err != nil {
			return sig, err
		}
		if ok {
			continue
		}
		if err := dst.Push(ctx, b.d, bytes.NewReader(b.data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return sig, fmt.Errorf("storing signature: %w", err)
		}
	}
	return sig, nil
}

// VerifySignature checks that a key in trust signed the package root and
// returns what was verified. The errors are those of [sign.Trust.Verify]:
// an archive without signatures gives one wrapping [sign.ErrUnsigned].
func (a *Archive) VerifySignature(ctx context.Context, trust *sign.Trust) (*sign.Verified, error) {
	if trust == nil {
		return nil, fmt.Errorf("%w to verify the signature of %s", ErrNoTrust, a.root.Digest)
	}
	sigs, err := a.Signatures(ctx)
	if err != nil {
		return nil, err
	}
	envs := make([][]byte, len(sigs))
	for i, s := range sigs {
		envs[i] = s.Envelope
	}
	return trust.Verify(envs, a.root.Digest)
}
