package oci

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"oras.land/oras-go/v2/registry"
)

// dockerHubAPI is where docker.io references are fetched from.
const dockerHubAPI = "registry-1.docker.io"

// source is a parsed image reference and where to fetch it.
type source struct {
	ref       string // normalized, e.g. docker.io/library/nginx:1.27
	domain    string // registry named by the reference, e.g. docker.io
	host      string // registry actually contacted (after mirrors)
	repo      string // repository at host
	reference string // tag or digest to resolve
	mirror    bool   // host/repo come from a mirror
}

// Normalize returns the canonical form of an image reference:
// "nginx" → "docker.io/library/nginx:latest". A reference with a digest
// keeps it and gets no default tag.
func Normalize(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(strings.TrimSpace(ref))
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w: use [registry/]repository[:tag][@digest]", ref, err)
	}
	if _, ok := named.(reference.Digested); !ok {
		named = reference.TagNameOnly(named)
	}
	return named.String(), nil
}

func parseSource(ref string, mirrors map[string]string) (source, error) {
	norm, err := Normalize(ref)
	if err != nil {
		return source{}, err
	}
	named, _ := reference.ParseNormalizedNamed(norm)
	s := source{
		ref:    norm,
		domain: reference.Domain(named),
		repo:   reference.Path(named),
	}
	if d, ok := named.(reference.Digested); ok {
		s.reference = d.Digest().String()
	} else if t, ok := named.(reference.Tagged); ok {
		s.reference = t.Tag()
	}
	s.host = s.domain
	if m, ok := mirrors[s.domain]; ok && m != "" {
		host, prefix, _ := strings.Cut(strings.TrimSuffix(m, "/"), "/")
		s.host, s.mirror = host, true
		if prefix != "" {
			s.repo = prefix + "/" + s.repo
		}
	} else if s.domain == "docker.io" {
		s.host = dockerHubAPI
	}
	return s, nil
}

// where names the registry contacted, with the mirror spelled out.
func (s source) where() string {
	if s.mirror {
		return s.host + " (mirror of " + s.domain + ")"
	}
	return s.host
}

// target is a parsed push destination host/repo[:tag|@digest].
type target struct {
	raw    string
	host   string
	repo   string
	tag    string
	digest string
}

func parseTarget(t string) (target, error) {
	r, err := registry.ParseReference(t)
	if err != nil {
		return target{}, fmt.Errorf("push target %q: %w: use host[:port]/repository[:tag]", t, err)
	}
	tg := target{raw: t, host: r.Registry, repo: r.Repository}
	if r.Reference != "" {
		if _, err := r.Digest(); err == nil {
			tg.digest = r.Reference
		} else {
			tg.tag = r.Reference
		}
	}
	return tg, nil
}
