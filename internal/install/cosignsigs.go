package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

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

// tagMerge is a cosign tag of the site registry that already names other
// signatures than the carried ones: the tag gets a manifest holding both.
type tagMerge struct {
	reg  *oci.Registry
	repo string
	tag  string
	desc ocispec.Descriptor
	raw  []byte
}

// keepSiteSignatures checks the cosign tags load would push (tags, from
// materialPushes) against the site registry. A tag that does not exist,
// or names the carried manifest, is pushed as it is. One that names
// another manifest (the site signed or attested the image itself, or
// another package carried other signatures) is never overwritten: if
// both are image manifests, the carried manifest is pushed by digest
// (its layers with it) and, after the push, the tag moves to a manifest
// holding the site's layers and then the carried ones not among them,
// as cosign appends a signature; otherwise the site's tag is kept.
func keepSiteSignatures(ctx context.Context, src content.Fetcher, tags []oci.PushImage, ro oci.RemoteOptions) ([]oci.PushImage, []tagMerge, error) {
	regs := map[string]*oci.Registry{}
	var push []oci.PushImage
	var merges []tagMerge
	for _, t := range tags {
		i := strings.LastIndexByte(t.Target, ':')
		ref, tag := t.Target[:i], t.Target[i+1:]
		host, repo, _, err := oci.SplitRef(ref)
		if err != nil {
			return nil, nil, err
		}
		reg := regs[host]
		if reg == nil {
			if reg, err = oci.NewRegistry(host, ro); err != nil {
				return nil, nil, err
			}
			regs[host] = reg
		}
		have, err := reg.Resolve(ctx, repo, tag)
		if errors.Is(err, oci.ErrNotFound) || err == nil && have.Digest == t.Descriptor.Digest {
			push = append(push, t)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		byDigest := oci.PushImage{Descriptor: t.Descriptor, Target: ref + "@" + t.Descriptor.Digest.String()}
		push = append(push, byDigest)
		siteRaw, err := reg.Manifest(ctx, repo, have)
		if err != nil {
			return nil, nil, err
		}
		carriedRaw, err := content.FetchAll(ctx, src, t.Descriptor)
		if err != nil {
			return nil, nil, err
		}
		var site, carried ocispec.Manifest
		if !isImageManifest(have.MediaType) || !isImageManifest(t.Descriptor.MediaType) ||
			json.Unmarshal(siteRaw, &site) != nil || json.Unmarshal(carriedRaw, &carried) != nil {
			continue // not cosign's layout: the site's tag stays
		}
		added := false
		for _, l := range carried.Layers {
			if !slices.ContainsFunc(site.Layers, func(s ocispec.Descriptor) bool { return sameLayer(s, l) }) {
				site.Layers = append(site.Layers, l)
				added = true
			}
		}
		if !added {
			continue // the site's manifest holds every carried layer
		}
		site.MediaType = have.MediaType
		raw, err := json.Marshal(site)
		if err != nil {
			return nil, nil, err
		}
		desc := ocispec.Descriptor{MediaType: have.MediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
		merges = append(merges, tagMerge{reg: reg, repo: repo, tag: tag, desc: desc, raw: raw})
	}
	return push, merges, nil
}

func isImageManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == "application/vnd.docker.distribution.manifest.v2+json"
}

// sameLayer: one signature or attestation layer (same content, same
// annotations: a signature of the same payload by another key differs).
func sameLayer(a, b ocispec.Descriptor) bool {
	return a.Digest == b.Digest && a.MediaType == b.MediaType && maps.Equal(a.Annotations, b.Annotations)
}

// push moves the tag to the merged manifest; its layers and config are in
// the repository (the site's and the carried manifest's).
func (m tagMerge) push(ctx context.Context) error {
	if err := m.reg.Repository(m.repo).PushReference(ctx, m.desc, bytes.NewReader(m.raw), m.tag); err != nil {
		return m.reg.Explain(fmt.Sprintf("adding the carried signatures to %s/%s:%s", m.reg.Host(), m.repo, m.tag), err)
	}
	return nil
}
