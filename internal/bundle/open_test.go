package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// TestOpenRejectsWhatVerifyRejects: every archive Verify rejects for its
// structure, Open rejects too, so no reader (load, inspect, install) gets
// further than verify would.
func TestOpenRejectsWhatVerifyRejects(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, buildOptions{})
	succ, err := content.Successors(ctx, p.store, p.images[0])
	if err != nil {
		t.Fatal(err)
	}
	layer := succ[1].Digest
	addBlob := func(ms []member, name digest.Digest, data []byte) []member {
		// Before index.json, the last member.
		return slices.Insert(slices.Clone(ms), len(ms)-1, member{header(blobName(name), int64(len(data))), data})
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, ms []member) []member
		want   error
	}{
		{"layer missing", func(t *testing.T, ms []member) []member {
			return slices.DeleteFunc(ms, func(m member) bool { return m.hdr.Name == blobName(layer) })
		}, ErrMissingBlob},
		{"index entry naming a missing blob", func(t *testing.T, ms []member) []member {
			var idx ocispec.Index
			last := len(ms) - 1
			if err := json.Unmarshal(ms[last].data, &idx); err != nil {
				t.Fatal(err)
			}
			ghost := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, []byte(`{"ghost":1}`))
			ghost.Data = nil
			ghost.ArtifactType = ArtifactTypeSignature
			idx.Manifests = append(idx.Manifests, ghost)
			b, err := json.Marshal(idx)
			if err != nil {
				t.Fatal(err)
			}
			ms[last] = member{header(memberIndex, int64(len(b))), b}
			return ms
		}, ErrMissingBlob},
		{"unreferenced blob not matching its name", func(t *testing.T, ms []member) []member {
			return addBlob(ms, digest.FromString("what the name says"), []byte("something else"))
		}, ErrExtraneousBlob},
		{"unreferenced blob", func(t *testing.T, ms []member) []member {
			return addBlob(ms, digest.FromString("stray"), []byte("stray"))
		}, ErrExtraneousBlob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := writePackage(t, p, t.TempDir(), WriteOptions{})
			writeMembers(t, out, tt.damage(t, readMembers(t, out)))
			if _, err := Verify(ctx, out, VerifyOptions{Allow: func(digest.Digest) bool { return true }}); err == nil {
				t.Fatal("Verify accepted the damaged archive")
			}
			a, err := Open(out)
			if !errors.Is(err, tt.want) {
				if err == nil {
					a.Close()
				}
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
			if _, _, err := OpenVerified(ctx, out, OpenOptions{SkipSignature: true}); !errors.Is(err, tt.want) {
				t.Fatalf("OpenVerified error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpenVerifiedNeedsTrustOrExplicitSkip(t *testing.T) {
	ctx := context.Background()
	out := writePackage(t, buildPackage(t, buildOptions{}), t.TempDir(), WriteOptions{})
	if _, _, err := OpenVerified(ctx, out, OpenOptions{}); !errors.Is(err, ErrNoTrust) {
		t.Fatalf("OpenVerified without trust: error = %v, want ErrNoTrust", err)
	}
	a, v, err := OpenVerified(ctx, out, OpenOptions{SkipSignature: true})
	if err != nil {
		t.Fatalf("OpenVerified(SkipSignature): %v", err)
	}
	defer a.Close()
	if v != nil {
		t.Errorf("Verified = %+v, want nil when skipped", v)
	}
	if _, err := a.VerifySignature(ctx, nil); !errors.Is(err, ErrNoTrust) {
		t.Errorf("VerifySignature(nil) error = %v, want ErrNoTrust", err)
	}
}
