package build

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

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

// material is the supply-chain material build carries beside the images.
type material struct {
	// descs are the archive index entries: cosign tag manifests named
	// REPOSITORY:sha256-HEX.sig|att|sbom and OCI referrers named
	// REPOSITORY@DIGEST.
	descs []ocispec.Descriptor
	// keyless names the images with keyless cosign
	// signatures or Sigstore bundles: carried, not verified.
	keyless []string
	// dropped counts, per image, the referrers of the source index that
	// could not be carried because platforms were filtered out of it.
	dropped map[string]int
	// warns are other things the user should know.
	warns []string
}

// warnings says what the material means for the user: what was carried
// but not verified, and what was left behind.
func (m *material) warnings() []string {
	var out []string
	if n := len(m.keyless); n > 0 {
		what := "1 image carries"
		if n > 1 {
			what = fmt.Sprintf("%d images carry", n)
		}
		out = append(out, fmt.Sprintf("%s keyless cosign signatures or Sigstore bundles (%s): they are carried and loaded as they are, but skiff verifies only keyed signatures (imageSignatures); verify them behind the gap with cosign's keyless checks and an offline trusted root (docs/trust.md)",
			what, strings.Join(m.keyless, ", ")))
	}
	slices.Sort(m.warns)
	out = append(out, m.warns...)
	refs := slices.Sorted(maps.Keys(m.dropped))
	for _, ref := range refs {
		what := "1 OCI referrer"
		if n := m.dropped[ref]; n > 1 {
			what = fmt.Sprintf("%d OCI referrers", n)
		}
		out = append(out, fmt.Sprintf("%s: %s of its multi-arch index not carried: the index was filtered to the package's platforms, so its digest changed and is not their subject; those of each kept platform manifest are carried (verify those digests), or list every platform of the image to keep the index as it is",
			ref, what))
	}
	return out
}

// maxReferrerDepth bounds how deep referrers of referrers (a signature
// of an attestation) are followed.
const maxReferrerDepth = 3

// cosignSuffixes are the tag suffixes cosign stores an image's
// signatures, attestations and attached SBOMs under.
var cosignSuffixes = []string{"sig", "att", "sbom"}

// carryMaterial copies into dst each image's signatures, attestations
// and other OCI referrers, with their graphs: cosign's tag manifests
// (sha256-HEX.sig, .att, .sbom) beside the image and OCI referrers
// (listed with the referrers API, or the referrers tag sha256-HEX where
// the registry has none), of the image's root and of every platform
// manifest the archive holds, and referrers of those referrers. For an
// index filtered to platforms, the material of the kept platform
// manifests is carried and the cosign tags of the source index too (they
// have no subject); the source index's referrers cannot be (their
// subject is not in the archive) and are counted in dropped.
func carryMaterial(ctx context.Context, dst oras.Target, pulled []oci.Image, ro oci.RemoteOptions, conc int) (*material, error) {
	if conc <= 0 {
		conc = oci.DefaultConcurrency
	}
	var mu sync.Mutex
	m := &material{dropped: map[string]int{}}
	seen := map[string]bool{}
	add := func(name string, d ocispec.Descriptor) bool {
		mu.Lock()
		defer mu.Unlock()
		if seen[name] {
			return false
		}
		seen[name] = true
		m.descs = append(m.descs, ocispec.Descriptor{
			MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: d.ArtifactType,
			Annotations: map[string]string{bundle.AnnotationRefName: name},
		})
		return true
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for _, im := range pulled {
		g.Go(func() error {
			c := &carrier{dst: dst, im: im, add: add}
			if err := c.carry(gctx, ro); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if c.keyless {
				m.keyless = append(m.keyless, im.Ref)
			}
			if c.dropped > 0 {
				m.dropped[im.Ref] = c.dropped
			}
			m.warns = append(m.warns, c.warns...)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.Sort(m.keyless)
	slices.SortFunc(m.descs, func(a, b ocispec.Descriptor) int {
		return strings.Compare(a.Annotations[bundle.AnnotationRefName], b.Annotations[bundle.AnnotationRefName])
	})
	return m, nil
}

// carrier carries the material of one image.
type carrier struct {
	dst     oras.Target
	im      oci.Image
	add     func(name string, d ocispec.Descriptor) bool
	name    string
	repo    *remote.Repository
	reg     *oci.Registry
	keyless bool
	dropped int
	warns   []string
}

func (c *carrier) carry(ctx context.Context, ro oci.RemoteOptions) error {
	named, err := reference.ParseNormalizedNamed(c.im.Ref)
	if err != nil {
		return fmt.Errorf("image %s: %w", c.im.Ref, err)
	}
	c.name = named.Name()
	if c.repo, c.reg, err = oci.SourceRepository(c.im.Ref, ro); err != nil {
		return err
	}
	subjects, err := c.subjects(ctx)
	if err != nil {
		return err
	}
	tagged := subjects
	if c.im.SourceDigest != "" {
		tagged = append([]ocispec.Descriptor{{Digest: c.im.SourceDigest}}, subjects...)
	}
	for _, s := range tagged {
		if err := c.tags(ctx, s.Digest); err != nil {
			return err
		}
	}
	for _, s := range subjects {
		if err := c.referrers(ctx, s, 1); err != nil {
			return err
		}
	}
	if c.im.SourceDigest != "" {
		err := c.repo.Referrers(ctx, ocispec.Descriptor{Digest: c.im.SourceDigest}, "", func(page []ocispec.Descriptor) error {
			c.dropped += len(page)
			return nil
		})
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// subjects are the manifests of the image that the archive holds: the
// root (unless it is an index filtered here, whose new digest nothing
// refers to) and the manifests of an index.
func (c *carrier) subjects(ctx context.Context) ([]ocispec.Descriptor, error) {
	root := c.im.Descriptor
	var out []ocispec.Descriptor
	if c.im.SourceDigest == "" {
		out = append(out, root)
	}
	if root.MediaType != ocispec.MediaTypeImageIndex && root.MediaType != "application/vnd.docker.distribution.manifest.list.v2+json" {
		return out, nil
	}
	raw, err := content.FetchAll(ctx, c.dst, root)
	if err != nil {
		return nil, fmt.Errorf("reading the index of %s: %w", c.im.Ref, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("reading the index of %s: %w", c.im.Ref, err)
	}
	return append(out, idx.Manifests...), nil
}

// tags copies cosign's tag manifests of digest d.
func (c *carrier) tags(ctx context.Context, d digest.Digest) error {
	for _, suffix := range cosignSuffixes {
		tag := cosign.SignatureTag(d, suffix)
		name := c.name + ":" + tag
		desc, err := oras.Copy(ctx, c.repo, tag, c.dst, "", oras.DefaultCopyOptions)
		if errors.Is(err, errdef.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("copying %s: %w", name, c.reg.Explain("reading "+name, err))
		}
		if !c.add(name, desc) || suffix != "sig" {
			continue
		}
		raw, err := content.FetchAll(ctx, c.dst, desc)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if n, err := cosign.KeylessSignatures(raw); err == nil && n > 0 {
			c.keyless = true
		}
	}
	return nil
}

// referrers copies the OCI referrers of subject (which the archive
// holds), and theirs, to depth maxReferrerDepth.
func (c *carrier) referrers(ctx context.Context, subject ocispec.Descriptor, depth int) error {
	var found []ocispec.Descriptor
	err := c.repo.Referrers(ctx, subject, "", func(page []ocispec.Descriptor) error {
		found = append(found, page...)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A registry (or a proxy before it) that answers the referrers
		// API with something else than 404 cannot say what refers to
		// the image: carry what else there is, and say so.
		c.warns = append(c.warns, fmt.Sprintf("%s: cannot list the OCI referrers of %s (%v): none are carried", c.im.Ref, subject.Digest, c.reg.Explain("listing referrers", err)))
		return nil
	}
	for _, r := range found {
		name := c.name + "@" + r.Digest.String()
		if err := oras.CopyGraph(ctx, c.repo, c.dst, r, oras.DefaultCopyGraphOptions); err != nil {
			return fmt.Errorf("copying referrer %s: %w", name, c.reg.Explain("reading "+name, err))
		}
		if !c.add(name, r) {
			continue
		}
		if strings.HasPrefix(r.ArtifactType, cosign.ArtifactTypeSigstoreBundle) {
			c.keyless = true
		}
		if depth < maxReferrerDepth {
			if err := c.referrers(ctx, r, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
