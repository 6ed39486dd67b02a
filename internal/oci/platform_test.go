package oci

import (
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestFilterIndexKeepsAttestations: Docker's attestation manifests (SBOM,
// provenance) stay with the platform manifests they describe, so an index
// whose every platform is wanted is kept as it is (its digest, and the
// signatures naming it, stay valid).
func TestFilterIndexKeepsAttestations(t *testing.T) {
	d := func(s string) digest.Digest { return digest.FromString(s) }
	plat := func(os, arch string) *ocispec.Platform { return &ocispec.Platform{OS: os, Architecture: arch} }
	att := func(name, of string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d(name), Size: 1, Platform: plat("unknown", "unknown"),
			Annotations: map[string]string{annotationDockerRefType: dockerRefTypeAttestation, annotationDockerRefDigest: d(of).String()}}
	}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: d("amd64"), Size: 1, Platform: plat("linux", "amd64")},
		{MediaType: ocispec.MediaTypeImageManifest, Digest: d("arm64"), Size: 1, Platform: plat("linux", "arm64")},
		att("att-amd64", "amd64"),
		att("att-arm64", "arm64"),
	}}
	for _, tc := range []struct {
		name    string
		want    []string
		kept    []digest.Digest
		dropped bool
	}{
		{"one platform keeps its attestation", []string{"linux/amd64"}, []digest.Digest{d("amd64"), d("att-amd64")}, true},
		{"every platform keeps the index", []string{"linux/amd64", "linux/arm64"}, []digest.Digest{d("amd64"), d("arm64"), d("att-amd64"), d("att-arm64")}, false},
		{"no platform", []string{"linux/s390x"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []ocispec.Platform
			for _, s := range tc.want {
				p, err := ParsePlatform(s)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, p)
			}
			kept, raw, dropped, err := filterIndex(idx, ocispec.MediaTypeImageIndex, want)
			if err != nil {
				t.Fatal(err)
			}
			var got []digest.Digest
			for _, k := range kept {
				got = append(got, k.Digest)
			}
			if !slices.Equal(got, tc.kept) || dropped != tc.dropped || (raw != nil) != tc.dropped {
				t.Fatalf("kept %v dropped %v (new index: %v); want %v dropped %v", got, dropped, raw != nil, tc.kept, tc.dropped)
			}
		})
	}
}
