package install

import (
	"regexp"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/oci"
)

// cosignTag matches the tags cosign keeps an image's signatures and
// attestations under.
var cosignTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}\.(sig|att)$`)

// signaturePushes returns the cosign signature and attestation manifests
// the archive carries (index entries named REPOSITORY:sha256-HEX.sig or
// .att, see build), each to be pushed with its tag into the repository
// its image is relocated to, so that `cosign verify` works there.
func signaturePushes(index []ocispec.Descriptor, d *bundle.Description, dest images.Destination) ([]oci.PushImage, error) {
	targets := map[string]string{} // source repository -> relocated repository
	for _, im := range d.Images {
		t, err := images.TargetTag(im.Ref, dest)
		if err != nil {
			return nil, err
		}
		targets[sourceRepo(im.Ref)] = sourceRepo(t)
	}
	var out []oci.PushImage
	for _, desc := range index {
		name := desc.Annotations[bundle.AnnotationRefName]
		i := strings.LastIndexByte(name, ':')
		if i < 0 || !cosignTag.MatchString(name[i+1:]) {
			continue
		}
		repo, ok := targets[name[:i]]
		if !ok {
			continue
		}
		out = append(out, oci.PushImage{Descriptor: desc, Target: repo + ":" + name[i+1:]})
	}
	return out, nil
}
