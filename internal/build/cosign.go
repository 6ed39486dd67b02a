package build

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"strings"

	"github.com/distribution/reference"

	"github.com/skiffhq/skiff/api/v1alpha1"
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
		host := reference.Domain(named)
		reg, err := oci.NewRegistry(host, ro)
		if err != nil {
			return err
		}
		if err := cosign.Verify(ctx, reg.Repository(reference.Path(named)), d, k); err != nil {
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
