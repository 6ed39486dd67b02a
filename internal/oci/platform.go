package oci

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParsePlatform parses "os/arch[/variant]", e.g. "linux/arm64/v8".
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant], e.g. linux/amd64", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// FormatPlatform is the inverse of ParsePlatform.
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// matches reports whether have satisfies one of want. A wanted platform
// without a variant accepts any variant ("linux/arm64" matches
// "linux/arm64/v8").
func matches(have *ocispec.Platform, want []ocispec.Platform) bool {
	if have == nil {
		return false
	}
	for _, w := range want {
		if w.OS == have.OS && w.Architecture == have.Architecture &&
			(w.Variant == "" || w.Variant == have.Variant) {
			return true
		}
	}
	return false
}

// listPlatforms returns the distinct platforms of an index's manifests,
// leaving out attestation entries (unknown/unknown).
func listPlatforms(idx ocispec.Index) []string {
	var out []string
	for _, m := range idx.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		if s := FormatPlatform(*m.Platform); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Annotations with which Docker (buildx) ties an attestation manifest
// (SBOM, provenance) in an index to the platform manifest it describes.
const (
	annotationDockerRefType   = "vnd.docker.reference.type"
	annotationDockerRefDigest = "vnd.docker.reference.digest"
	dockerRefTypeAttestation  = "attestation-manifest"
)

// filterIndex keeps the manifests of idx matching want, and the
// attestation manifests of those (Docker's, tied to a platform manifest
// by annotation). It reports whether anything was dropped; the returned
// bytes are the new index (deterministic JSON: fixed field order, sorted
// annotation keys).
func filterIndex(idx ocispec.Index, mediaType string, want []ocispec.Platform) (kept []ocispec.Descriptor, raw []byte, dropped bool, err error) {
	keep := map[string]bool{}
	for _, m := range idx.Manifests {
		if matches(m.Platform, want) {
			keep[m.Digest.String()] = true
		}
	}
	if len(keep) == 0 {
		return nil, nil, false, nil
	}
	for _, m := range idx.Manifests {
		if keep[m.Digest.String()] ||
			m.Annotations[annotationDockerRefType] == dockerRefTypeAttestation && keep[m.Annotations[annotationDockerRefDigest]] {
			kept = append(kept, m)
		}
	}
	if len(kept) == len(idx.Manifests) {
		return kept, nil, false, nil
	}
	out := idx
	out.MediaType = mediaType
	out.Manifests = kept
	raw, err = json.Marshal(out)
	return kept, raw, true, err
}

// imageConfig is the part of an image config that names its platform.
type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}
