package artifact

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	orasoci "oras.land/oras-go/v2/content/oci"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/oci"
)

// PullOptions configures [Pull].
type PullOptions struct {
	Remote oci.RemoteOptions
	// Concurrency bounds parallel downloads; oci.DefaultConcurrency if zero.
	Concurrency int
	// StagingDir holds the per-output staging layouts that make an
	// interrupted pull resumable; "" means the user cache directory
	// (skiff/pull).
	StagingDir string
	// Transfer receives download events: oci.BlobStart and oci.BlobDone
	// for each blob fetched, oci.BlobSkipped for one staged by an earlier,
	// interrupted pull. Calls are serialized.
	Transfer func(oci.Event)
	// Progress receives archive-writing events.
	Progress func(bundle.Event)
}

// PullResult reports a pull.
type PullResult struct {
	Reference string `json:"reference"`
	// Output is the archive written.
	Output string `json:"output"`
	// Root is the package root's digest.
	Root       string              `json:"root"`
	Signatures int                 `json:"signatures"`
	Write      *bundle.WriteResult `json:"write"`
}

// maxIndex bounds the root index read into memory.
const maxIndex = 4 << 20

// Pull writes the package at ref as an archive at out. ref's tag (or
// digest) must name a package root index. Its graph and every signature
// referring to it (by the referrers API, or the referrers tag where the
// registry has no such API) are copied into a staging layout named for
// out, then the archive is written from it: byte for byte the archive
// that was pushed (with the signatures the registry holds), written
// atomically. An interrupted pull to the same out resumes.
func Pull(ctx context.Context, ref Ref, out string, o PullOptions) (*PullResult, error) {
	if ref.Tag == "" {
		return nil, fmt.Errorf("pulling %s: name the version: %s:VERSION", ref, ref)
	}
	reg, err := oci.NewRegistry(ref.Host, o.Remote)
	if err != nil {
		return nil, err
	}
	repo := reg.Repository(ref.Repo)
	what := "pulling " + ref.String()
	desc, raw, err := oras.FetchBytes(ctx, repo, ref.Tag, oras.FetchBytesOptions{MaxBytes: maxIndex})
	if err != nil {
		return nil, reg.Explain(what, err)
	}
	var idx ocispec.Index
	if desc.MediaType == ocispec.MediaTypeImageIndex {
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("%s: reading the root index: %w", what, err)
		}
	}
	if idx.ArtifactType != bundle.ArtifactTypePackage {
		return nil, fmt.Errorf("%s: it is not a Skiff package (media type %s, artifact type %q): push one with skiff push ARCHIVE %s",
			what, desc.MediaType, idx.ArtifactType, ref)
	}
	root := rootDescriptor(desc, idx)

	var sigs []ocispec.Descriptor
	err = repo.Referrers(ctx, root, bundle.ArtifactTypeSignature, func(page []ocispec.Descriptor) error {
		for _, d := range page {
			if d.MediaType != ocispec.MediaTypeImageManifest || d.ArtifactType != bundle.ArtifactTypeSignature {
				continue
			}
			sigs = append(sigs, ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: d.ArtifactType})
		}
		return nil
	})
	if err != nil {
		return nil, reg.Explain(what+": listing its signatures", err)
	}
	slices.SortFunc(sigs, func(a, b ocispec.Descriptor) int { return cmp.Compare(a.Digest, b.Digest) })
	sigs = slices.CompactFunc(sigs, func(a, b ocispec.Descriptor) bool { return a.Digest == b.Digest })

	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	stage, err := bundle.StagingDir(o.StagingDir, "pull", abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	store, err := orasoci.NewWithContext(ctx, stage)
	if err != nil {
		return nil, fmt.Errorf("%s: opening the staging layout %s: %w (remove it and pull again)", what, stage, err)
	}
	var mu sync.Mutex
	emit := func(k oci.EventKind, d ocispec.Descriptor) error {
		if o.Transfer == nil {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		o.Transfer(oci.Event{Kind: k, Image: ref.String(), Digest: d.Digest, MediaType: d.MediaType, Size: d.Size})
		return nil
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = oci.DefaultConcurrency
	}
	copts := oras.CopyGraphOptions{
		Concurrency:   conc,
		PreCopy:       func(_ context.Context, d ocispec.Descriptor) error { return emit(oci.BlobStart, d) },
		PostCopy:      func(_ context.Context, d ocispec.Descriptor) error { return emit(oci.BlobDone, d) },
		OnCopySkipped: func(_ context.Context, d ocispec.Descriptor) error { return emit(oci.BlobSkipped, d) },
	}
	// The root's bytes are already here: serve them from memory.
	src := rootFirst{ReadOnlyStorage: repo, root: root, raw: raw}
	for _, d := range append([]ocispec.Descriptor{root}, sigs...) {
		if err := oras.CopyGraph(ctx, src, store, d, copts); err != nil {
			return nil, fmt.Errorf("%w (pull again to resume)", reg.Explain(what, err))
		}
	}
	w, err := bundle.Write(ctx, store, root, out, bundle.WriteOptions{Signatures: sigs, Progress: o.Progress})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	os.RemoveAll(stage)
	return &PullResult{
		Reference: ref.String(), Output: out, Root: root.Digest.String(),
		Signatures: len(sigs), Write: w,
	}, nil
}

// rootFirst serves the already fetched root index from memory and
// everything else from the repository.
type rootFirst struct {
	content.ReadOnlyStorage
	root ocispec.Descriptor
	raw  []byte
}

func (r rootFirst) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if d.Digest == r.root.Digest {
		return io.NopCloser(bytes.NewReader(r.raw)), nil
	}
	return r.ReadOnlyStorage.Fetch(ctx, d)
}
