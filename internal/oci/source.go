package oci

import "oras.land/oras-go/v2/registry/remote"

// SourceRepository returns a client of the repository an image reference
// is pulled from, as Pull contacts it (registry mirrors of o applied,
// docker.io's API host), and the registry handle (for Explain).
func SourceRepository(ref string, o RemoteOptions) (*remote.Repository, *Registry, error) {
	s, err := parseSource(ref, o.Mirrors)
	if err != nil {
		return nil, nil, err
	}
	reg, err := NewRegistry(s.host, o)
	if err != nil {
		return nil, nil, err
	}
	return reg.Repository(s.repo), reg, nil
}
