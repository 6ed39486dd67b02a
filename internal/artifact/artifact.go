// Package artifact moves package archives to and from plain OCI
// registries (distribution, Harbor, zot, the embedded registry): no Skiff
// hub needed.
//
// An archive is stored as what it already is, an OCI graph: [Push] copies
// the package root index (with the images, charts, manifests, files and
// SBOMs below it) into one repository and tags it, then pushes each
// signature manifest, whose subject is the root, so registries with the
// referrers API list it as a referrer and registries without it get the
// referrers tag (sha256-<hex of the root digest>) that OCI 1.1 defines
// as the fallback. [Pull] resolves the tag, copies the root's graph and
// its signature referrers into a staging layout, and writes the archive
// from it: the same bytes as the archive pushed, so its signatures verify
// as before.
package artifact

import (
	"fmt"
	"regexp"
	"strings"

	"oras.land/oras-go/v2/registry"
)

// Scheme prefixes a package reference in a plain OCI registry.
const Scheme = "oci://"

// Ref names a package in an OCI registry: oci://HOST[:PORT]/REPO[:TAG].
type Ref struct {
	Host, Repo string
	// Tag is the tag, or a digest (sha256:...); "" when the reference
	// named none (Push then uses the package version).
	Tag string
}

// String gives the reference back with its scheme.
func (r Ref) String() string {
	s := Scheme + r.Host + "/" + r.Repo
	switch {
	case strings.Contains(r.Tag, ":"):
		return s + "@" + r.Tag
	case r.Tag != "":
		return s + ":" + r.Tag
	}
	return s
}

// IsRef reports whether s is written as an OCI package reference (starts
// with oci://).
func IsRef(s string) bool { return strings.HasPrefix(s, Scheme) }

// ParseRef parses oci://HOST[:PORT]/REPO[:TAG|@DIGEST].
func ParseRef(s string) (Ref, error) {
	if !IsRef(s) {
		return Ref{}, fmt.Errorf("package reference %q: write oci://REGISTRY/REPOSITORY[:TAG]", s)
	}
	r, err := registry.ParseReference(strings.TrimPrefix(s, Scheme))
	if err != nil {
		return Ref{}, fmt.Errorf("package reference %q: %w: write oci://REGISTRY/REPOSITORY[:TAG], e.g. oci://registry.example:5000/packages/shop:1.2.0", s, err)
	}
	return Ref{Host: r.Registry, Repo: r.Repository, Tag: r.Reference}, nil
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// VersionTag turns a package version into a tag: OCI tags cannot hold
// "+", so semver build metadata is joined with "_" as Helm does
// (1.2.0+build.1 → 1.2.0_build.1).
func VersionTag(version string) (string, error) {
	t := strings.ReplaceAll(version, "+", "_")
	if !tagRE.MatchString(t) {
		return "", fmt.Errorf("version %q cannot be an OCI tag: name the tag in the reference (oci://REGISTRY/REPOSITORY:TAG)", version)
	}
	return t, nil
}
