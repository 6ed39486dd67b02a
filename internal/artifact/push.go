package artifact

import (
	"context"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/oci"
)

// PushOptions configures [Push].
type PushOptions struct {
	Remote oci.RemoteOptions
	// Concurrency bounds parallel uploads; oci.DefaultConcurrency if zero.
	Concurrency int
	// Progress receives upload events (one call at a time).
	Progress func(oci.Event)
}

// PushResult reports a push.
type PushResult struct {
	// Ref is where the package is, with its tag.
	Ref Ref `json:"-"`
	// Reference is Ref as a string.
	Reference string `json:"reference"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	// Root is the package root's digest: pull by it to get exactly this.
	Root       string          `json:"root"`
	Signatures int             `json:"signatures"`
	Push       *oci.PushResult `json:"push"`
}

// Push uploads the archive to ref: the root index and its graph into
// ref's repository, tagged with ref's tag (default: the package version),
// then each signature manifest, one at a time (a registry without the
// referrers API keeps its referrers in one index that each push rewrites).
// Blobs the repository has are skipped. A delta archive is refused: it
// lacks blobs.
func Push(ctx context.Context, archive string, ref Ref, o PushOptions) (*PushResult, error) {
	a, err := bundle.Open(archive)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	d, err := a.Description(ctx)
	if err != nil {
		return nil, err
	}
	if d.Delta != nil {
		return nil, fmt.Errorf("pushing %s: it is a delta archive and lacks blobs: push the full package", archive)
	}
	if ref.Tag == "" {
		if ref.Tag, err = VersionTag(d.Version); err != nil {
			return nil, fmt.Errorf("pushing %s: %w", archive, err)
		}
	}
	sigs, err := a.Signatures(ctx)
	if err != nil {
		return nil, err
	}
	repo := ref.Host + "/" + ref.Repo
	target := strings.TrimPrefix(ref.String(), Scheme) // repo:tag or repo@digest
	po := oci.PushOptions{RemoteOptions: o.Remote, Concurrency: o.Concurrency, Progress: o.Progress}
	res, err := oci.Push(ctx, a, []oci.PushImage{{Descriptor: a.Root(), Target: target}}, po)
	if err != nil {
		return nil, fmt.Errorf("pushing %s to %s: %w", archive, ref, err)
	}
	for _, s := range sigs {
		sres, err := oci.Push(ctx, a, []oci.PushImage{{Descriptor: s.Descriptor, Target: repo}}, po)
		if err != nil {
			return nil, fmt.Errorf("pushing the signatures of %s to %s: %w", archive, ref, err)
		}
		add(res, sres)
	}
	return &PushResult{
		Ref: ref, Reference: ref.String(), Name: d.Name, Version: d.Version,
		Root: a.Root().Digest.String(), Signatures: len(sigs), Push: res,
	}, nil
}

func add(to, r *oci.PushResult) {
	to.BlobsPushed += r.BlobsPushed
	to.BlobsSkipped += r.BlobsSkipped
	to.BlobsMounted += r.BlobsMounted
	to.BytesPushed += r.BytesPushed
	to.BytesSkipped += r.BytesSkipped
	to.ManifestsPushed += r.ManifestsPushed
}

// rootDescriptor is the descriptor index.json lists for a root index:
// its artifact type and annotations copied from the index itself.
func rootDescriptor(d ocispec.Descriptor, idx ocispec.Index) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: d.MediaType, Digest: d.Digest, Size: d.Size,
		ArtifactType: idx.ArtifactType, Annotations: idx.Annotations,
	}
}
