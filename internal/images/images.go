// Package images finds, normalizes and relocates container image references
// in Kubernetes manifests.
//
// Discover walks multi-document YAML and reports every image a workload or
// custom resource refers to; Relocate rewrites the same references to where
// the package loader pushed them; Target computes those relocated names.
package images

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/skiffhq/skiff/internal/endpoint"
)

// ErrNoTag is returned by TargetTag for a source reference pinned only by
// digest.
var ErrNoTag = errors.New("image reference has no tag")

// Normalize returns the fully qualified form of an image reference:
// "nginx" becomes "docker.io/library/nginx:latest". A digest is kept, and a
// reference with both a tag and a digest keeps both.
func Normalize(ref string) (string, error) {
	named, err := parse(ref)
	if err != nil {
		return "", err
	}
	return named.String(), nil
}

// parse parses ref into its normalized form, adding the latest tag when the
// reference has neither tag nor digest.
func parse(ref string) (reference.Named, error) {
	s := strings.TrimSpace(ref)
	if s == "" {
		return nil, errors.New("empty image reference")
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	return reference.TagNameOnly(named), nil
}

// Destination is a registry location images are relocated to.
type Destination struct {
	// Scheme is how the registry address was written to be reached:
	// endpoint.HTTPS, endpoint.HTTP, or "" (see endpoint.Address.PlainHTTP).
	Scheme string
	// Host is the registry host, with port if any (127.0.0.1:5000).
	Host string
	// Prefix is an optional repository path prepended to each image path.
	Prefix string
	// Flatten keeps only the last element of the source path, so
	// quay.io/org/team/app becomes Host/Prefix/app. Without it the source
	// registry host is kept: Host/Prefix/quay.io/org/team/app (and
	// nginx is Host/Prefix/docker.io/library/nginx), so two source
	// registries never collide and a node-level mirror can map an upstream
	// name to Host/Prefix/<upstream host>/<path> one to one.
	Flatten bool
}

// Target returns the relocated, digest-pinned reference of src in t:
// host/prefix/<source host>/path@digest, or host/prefix/<last path
// element>@digest with t.Flatten (see [Destination]). When dgst is empty
// the digest of src is used; a src without digest then is an error.
func Target(src string, t Destination, dgst digest.Digest) (string, error) {
	named, err := parse(src)
	if err != nil {
		return "", err
	}
	if dgst == "" {
		if c, ok := named.(reference.Canonical); ok {
			dgst = c.Digest()
		} else {
			return "", fmt.Errorf("target for %s: no digest given and the reference has none", named)
		}
	}
	if err := dgst.Validate(); err != nil {
		return "", fmt.Errorf("target for %s: digest %q: %w", named, dgst, err)
	}
	repo, err := targetRepo(named, t)
	if err != nil {
		return "", err
	}
	out := repo + "@" + dgst.String()
	if _, err := reference.ParseNamed(out); err != nil {
		return "", fmt.Errorf("target for %s: %q: %w", named, out, err)
	}
	return out, nil
}

// TargetTag returns the relocated, tagged reference of src in t:
// host/prefix/<source host>/path:tag, for pushing the tag next to the
// digest. A src pinned only by digest has no tag: the error then wraps
// ErrNoTag.
func TargetTag(src string, t Destination) (string, error) {
	named, err := parse(src)
	if err != nil {
		return "", err
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return "", fmt.Errorf("target tag for %s: %w", named, ErrNoTag)
	}
	repo, err := targetRepo(named, t)
	if err != nil {
		return "", err
	}
	out := repo + ":" + tagged.Tag()
	if _, err := reference.ParseNamed(out); err != nil {
		return "", fmt.Errorf("target for %s: %q: %w", named, out, err)
	}
	return out, nil
}

// SourceHostPath is the path element a source registry host becomes under
// a Destination: the host, lower-cased, with a port's ':' as '_'
// (localhost:5000 becomes localhost_5000), since ':' is not allowed in a
// repository path.
func SourceHostPath(host string) string {
	return strings.ReplaceAll(strings.ToLower(host), ":", "_")
}

func targetRepo(named reference.Named, t Destination) (string, error) {
	host := strings.TrimSuffix(strings.TrimSpace(t.Host), "/")
	if host == "" {
		return "", fmt.Errorf("target for %s: destination host is empty", named)
	}
	p := SourceHostPath(reference.Domain(named)) + "/" + reference.Path(named)
	if t.Flatten {
		p = path.Base(p)
	}
	parts := []string{host}
	if prefix := strings.Trim(t.Prefix, "/"); prefix != "" {
		parts = append(parts, prefix)
	}
	parts = append(parts, p)
	return strings.Join(parts, "/"), nil
}

// TargetRepo returns the repository src is relocated to in t, without tag
// or digest: host/prefix/path.
func TargetRepo(src string, t Destination) (string, error) {
	named, err := parse(src)
	if err != nil {
		return "", err
	}
	return targetRepo(named, t)
}

// ParseDestination reads [https://|http://]HOST[:PORT][/PREFIX] (see
// endpoint.Parse) as a Destination.
func ParseDestination(s string, flatten bool) (Destination, error) {
	if strings.Trim(s, "/") == "" {
		return Destination{}, fmt.Errorf("no target registry: pass --registry HOST[:PORT][/PREFIX], e.g. --registry 127.0.0.1:5000/mirror")
	}
	a, err := endpoint.Parse(s)
	if err != nil {
		return Destination{}, fmt.Errorf("target registry: %w", err)
	}
	return Destination{Scheme: a.Scheme, Host: a.Host, Prefix: a.Path, Flatten: flatten}, nil
}

// Address is the registry's address: scheme and host.
func (t Destination) Address() endpoint.Address {
	return endpoint.Address{Scheme: t.Scheme, Host: t.Host}
}
