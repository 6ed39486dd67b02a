package bundle

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

// Description is the package description: the JSON config of the metadata
// manifest (media type [MediaTypeConfig]). Lists whose order carries no
// meaning are sorted when it is marshalled (see [Description.Marshal]);
// Charts and Manifests keep the spec's order.
type Description struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
	// Spec is the package spec the archive was built from.
	Spec *v1alpha1.Package `json:"spec,omitempty"`
	// KubeVersion is the Kubernetes version the charts were rendered for
	// at build (v1.35): their images are the ones that version selects.
	KubeVersion string `json:"kubeVersion,omitempty"`
	// Platforms are the os/arch[/variant] image platforms kept.
	Platforms    []string      `json:"platforms,omitempty"`
	Images       []Image       `json:"images,omitempty"`
	Charts       []Chart       `json:"charts,omitempty"`
	Manifests    []ManifestSet `json:"manifests,omitempty"`
	Files        []File        `json:"files,omitempty"`
	SBOMs        []SBOM        `json:"sboms,omitempty"`
	Dependencies []Dependency  `json:"dependencies,omitempty"`
	// Delta is set on a delta archive.
	Delta *Delta `json:"delta,omitempty"`
	// CreatedBy names the tool that built the archive ("skiff v0.3.0").
	CreatedBy string `json:"createdBy,omitempty"`
}

// Image is an image carried in the package.
type Image struct {
	// Ref is the normalized source reference (docker.io/library/nginx:1.27).
	Ref string `json:"ref"`
	// Digest, MediaType and Size describe the manifest or index carried.
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	// Platforms are the platforms carried (os/arch[/variant]).
	Platforms []string `json:"platforms,omitempty"`
	// SourceDigest is the digest of the multi-arch index Digest was
	// filtered from, when it was.
	SourceDigest digest.Digest `json:"sourceDigest,omitempty"`
}

// Chart is a Helm chart carried in the package; its archive is a metadata
// layer titled Name.
type Chart struct {
	// Name is the component name from the spec.
	Name string `json:"name"`
	// Chart is the chart's own name (Chart.yaml).
	Chart      string `json:"chart"`
	Version    string `json:"version"`
	AppVersion string `json:"appVersion,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	// Release is the Helm release name the spec sets (releaseName);
	// empty means the installer's default.
	Release string        `json:"release,omitempty"`
	Digest  digest.Digest `json:"digest"`
	Size    int64         `json:"size"`
	// Images are the image references the chart renders.
	Images []string `json:"images,omitempty"`
	// Values are the package's values for the chart (values files, inline
	// values and build-time --set merged), the defaults at install.
	Values json.RawMessage `json:"values,omitempty"`
	// ImageValues map dotted value paths to normalized image references;
	// install sets each value to the image's relocated reference.
	ImageValues map[string]string `json:"imageValues,omitempty"`
}

// ManifestSet is a set of Kubernetes manifests carried in the package; its
// tar+zstd is a metadata layer titled Name.
type ManifestSet struct {
	Name      string        `json:"name"`
	Namespace string        `json:"namespace,omitempty"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	Images    []string      `json:"images,omitempty"`
}

// File is a carried file. All files travel in one tar+zstd layer
// ([MediaTypeFiles]); Digest and Size are the file's own.
type File struct {
	Target string        `json:"target"`
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

// SBOM is the SBOM of one image platform; it is a metadata layer.
type SBOM struct {
	Image    string        `json:"image"`
	Platform string        `json:"platform,omitempty"`
	Digest   digest.Digest `json:"digest"`
}

// Dependency is a package that must be installed first.
type Dependency struct {
	Name string `json:"name"`
	// Version is the semver range from the spec.
	Version string `json:"version"`
	// Resolved is the version found at build time, if any.
	Resolved string `json:"resolved,omitempty"`
}

// Delta describes what a delta archive leaves out.
type Delta struct {
	// Base is the digest of the base inventory.
	Base string `json:"base"`
	// Omitted are the blobs left out because the base holds them.
	Omitted []digest.Digest `json:"omitted,omitempty"`
}

// Marshal returns the canonical JSON of d: unordered lists sorted, no
// indentation. d itself is not modified.
func (d *Description) Marshal() ([]byte, error) {
	n := *d
	n.Platforms = sortedStrings(d.Platforms)
	n.Images = slices.Clone(d.Images)
	for i := range n.Images {
		n.Images[i].Platforms = sortedStrings(n.Images[i].Platforms)
	}
	slices.SortStableFunc(n.Images, func(a, b Image) int {
		return cmp.Or(cmp.Compare(a.Ref, b.Ref), cmp.Compare(a.Digest, b.Digest))
	})
	n.Charts = slices.Clone(d.Charts)
	for i := range n.Charts {
		n.Charts[i].Images = sortedStrings(n.Charts[i].Images)
	}
	n.Manifests = slices.Clone(d.Manifests)
	for i := range n.Manifests {
		n.Manifests[i].Images = sortedStrings(n.Manifests[i].Images)
	}
	n.Files = slices.Clone(d.Files)
	slices.SortStableFunc(n.Files, func(a, b File) int { return cmp.Compare(a.Target, b.Target) })
	n.SBOMs = slices.Clone(d.SBOMs)
	slices.SortStableFunc(n.SBOMs, func(a, b SBOM) int {
		return cmp.Or(cmp.Compare(a.Image, b.Image), cmp.Compare(a.Platform, b.Platform), cmp.Compare(a.Digest, b.Digest))
	})
	n.Dependencies = slices.Clone(d.Dependencies)
	slices.SortStableFunc(n.Dependencies, func(a, b Dependency) int { return cmp.Compare(a.Name, b.Name) })
	if d.Delta != nil {
		delta := *d.Delta
		delta.Omitted = slices.Clone(delta.Omitted)
		slices.Sort(delta.Omitted)
		delta.Omitted = slices.Compact(delta.Omitted)
		n.Delta = &delta
	}
	b, err := json.Marshal(&n)
	if err != nil {
		return nil, fmt.Errorf("encoding package description: %w", err)
	}
	return b, nil
}

// sortedStrings returns a sorted copy of s without duplicates.
func sortedStrings(s []string) []string {
	if s == nil {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
