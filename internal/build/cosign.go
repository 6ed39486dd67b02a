package build

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/errdef"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/cosign"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/spec"
)

// verifySignatures checks the cosign signature of every pulled image
// that skiff.yaml's imageSignatures name a key for (an image's own
// repository rule before its registry's), at the digest pulled from the
// source (the index before platforms were filtered).
func verifySignatures(ctx context.Context, s *spec.Spec, pulled []oci.Image, ro oci.RemoteOptions) error {
	rules := s.Package.ImageSignatures
	if len(rules) == 0 {
		return nil
	}
	keys := map[int]crypto.PublicKey{}
	key := func(i int) (crypto.PublicKey, error) {
		if k, ok := keys[i]; ok {
			return k, nil
		}
		path := spec.Resolve(s, rules[i].PublicKey)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("imageSignatures[%d].publicKey: %w", i, err)
		}
		k, err := cosign.ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("imageSignatures[%d].publicKey %s: %w", i, path, err)
		}
		keys[i] = k
		return k, nil
	}
	for _, im := range pulled {
		named, err := reference.ParseNormalizedNamed(im.Ref)
		if err != nil {
			return fmt.Errorf("image %s: %w", im.Ref, err)
		}
		i := matchSignature(rules, named)
		if i < 0 {
			continue
		}
		k, err := key(i)
		if err != nil {
			return err
		}
		d := im.Descriptor.Digest
		if im.SourceDigest != "" {
			d = im.SourceDigest
		}
		repo, _, err := oci.SourceRepository(im.Ref, ro)
		if err != nil {
			return err
		}
		if err := cosign.Verify(ctx, repo, d, k); err != nil {
			return fmt.Errorf("image %s (%s): %w: skiff.yaml requires a cosign signature made with %s (imageSignatures[%d]); sign it with `cosign sign --key` or fix the key", im.Ref, d, err, rules[i].PublicKey, i)
		}
	}
	return nil
}

// matchSignature returns the index of the rule for the image's
// repository, else of its registry's rule, else -1.
func matchSignature(rules []v1alpha1.ImageSignature, named reference.Named) int {
	reg := -1
	for i, r := range rules {
		if r.Image != "" {
			if n, err := reference.ParseNormalizedNamed(r.Image); err == nil && n.Name() == named.Name() {
				return i
			}
		} else if reg < 0 && strings.EqualFold(r.Registry, reference.Domain(named)) {
			reg = i
		}
	}
	return reg
}

// carrySignatures copies the cosign signature and attestation manifests
// (tags sha256-HEX.sig and sha256-HEX.att beside each image) with their
// graphs into dst, returning them as archive index entries named
// REPOSITORY:TAG, which load pushes beside the image. Only images carried
// as they are in the source (not filtered to platforms) get theirs: the
// signed digest must exist at the destination.
func carrySignatures(ctx context.Context, dst oras.Target, pulled []oci.Image, ro oci.RemoteOptions) ([]ocispec.Descriptor, error) {
	var out []ocispec.Descriptor
	seen := map[string]bool{}
	for _, im := range pulled {
		if im.SourceDigest != "" {
			continue
		}
		named, err := reference.ParseNormalizedNamed(im.Ref)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Ref, err)
		}
		repo, reg, err := oci.SourceRepository(im.Ref, ro)
		if err != nil {
			return nil, err
		}
		for _, suffix := range []string{"sig", "att"} {
			tag := cosign.SignatureTag(im.Descriptor.Digest, suffix)
			name := named.Name() + ":" + tag
			if seen[name] {
				continue
			}
			seen[name] = true
			desc, err := oras.Copy(ctx, repo, tag, dst, "", oras.DefaultCopyOptions)
			if errors.Is(err, errdef.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("copying %s: %w", name, reg.Explain("reading "+name, err))
			}
			desc.Annotations = map[string]string{bundle.AnnotationRefName: name}
			out = append(out, desc)
		}
	}
	return out, nil
}
