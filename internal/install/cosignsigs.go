package install

import (
	"regexp"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/oci"
)

// cosignTag matches the tags cosign keeps an image's signatures,
// attestations and attached SBOMs under.
var cosignTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}\.(sig|att|sbom)$`)

// materialPushes returns the supply-chain material the archive carries
// beside its images (see build), each to be pushed into the repository
// its image is relocated to: cosign's tag manifests (index entries named
// REPOSITORY:sha256-HEX.sig, .att or .sbom), pushed with their tags so
// that `cosign verify` works there, and OCI referrers (named
// REPOSITORY@DIGEST), pushed by digest: the registry's referrers API
// lists them, or, where it has none, the referrers tag sha256-HEX is
// updated (oras does). Referrers must be pushed after the images, one at
// a time: a registry without the referrers API keeps them in one index
// per subject, which each push rewrites.
func materialPushes(index []ocispec.Descriptor, d *bundle.Description, dest images.Destination) (tags, referrers []oci.PushImage, err error) {
	targets := map[string]string{} // source repository -> relocated repository
	for _, im := range d.Images {
		t, err := images.TargetTag(im.Ref, dest)
		if err != nil {
			return nil, nil, err
		}
		targets[sourceRepo(im.Ref)] = sourceRepo(t)
	}
	for _, desc := range index {
		name := desc.Annotations[bundle.AnnotationRefName]
		if repo, dg, ok := strings.Cut(name, "@"); ok {
			if _, err := digest.Parse(dg); err != nil || dg != desc.Digest.String() {
				continue
			}
			if t, ok := targets[repo]; ok {
				referrers = append(referrers, oci.PushImage{Descriptor: desc, Target: t})
			}
			continue
		}
		i := strings.LastIndexByte(name, ':')
		if i < 0 || !cosignTag.MatchString(name[i+1:]) {
			continue
		}
		if t, ok := targets[name[:i]]; ok {
			tags = append(tags, oci.PushImage{Descriptor: desc, Target: t + ":" + name[i+1:]})
		}
	}
	slices.SortFunc(referrers, func(a, b oci.PushImage) int {
		return strings.Compare(a.Target+"@"+a.Descriptor.Digest.String(), b.Target+"@"+b.Descriptor.Digest.String())
	})
	return tags, referrers, nil
}

// Material counts the supply-chain material an archive carries beside its
// images (see materialPushes): cosign's tag manifests and OCI referrers.
func Material(index []ocispec.Descriptor) (cosign, referrers int) {
	for _, desc := range index {
		name := desc.Annotations[bundle.AnnotationRefName]
		if _, dg, ok := strings.Cut(name, "@"); ok && dg == desc.Digest.String() {
			referrers++
		} else if i := strings.LastIndexByte(name, ':'); i >= 0 && cosignTag.MatchString(name[i+1:]) {
			cosign++
		}
	}
	return cosign, referrers
}
