package hubclient

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	orasoci "oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/endpoint"
	"github.com/skiffhq/skiff/internal/hubapi"
	"github.com/skiffhq/skiff/internal/oci"
)

// PushOptions configures [Client.Push].
type PushOptions struct {
	// Concurrency bounds parallel uploads; oci.DefaultConcurrency if zero.
	Concurrency int
	// Progress receives upload events.
	Progress func(oci.Event)
	// NoSubmit leaves the package quarantined instead of running its
	// gates right away.
	NoSubmit bool
}

// PushResult reports a push.
type PushResult struct {
	Ref  Ref
	Push *oci.PushResult
	// Package is the hub's record after its gates ran (nil with NoSubmit).
	Package *hubapi.Package
}

func (c *Client) remoteOptions() oci.RemoteOptions {
	scheme := endpoint.HTTPS
	if c.plainHTTP() {
		scheme = endpoint.HTTP
	}
	o := oci.RemoteOptions{
		Username: c.o.Username,
		Password: c.o.Token,
		Schemes:  map[string]string{c.host: scheme},
		CAFile:   c.o.CAFile,
	}
	if c.o.Insecure {
		o.Insecure = []string{c.host}
	}
	return o
}

// Push uploads the package archive into repository OWNER/NAME of the hub
// (NAME is the package's name), tags its root with the version, uploads
// its signatures, and submits it: the hub records it quarantined, runs
// its gates, and answers pending (awaiting approval) or rejected. Blobs
// are streamed from the archive; those the hub has are skipped.
func (c *Client) Push(ctx context.Context, archive, owner string, o PushOptions) (*PushResult, error) {
	if c.o.Token == "" {
		return nil, fmt.Errorf("not logged in to %s: run `skiff login %s --username NAME`", c.host, c.host)
	}
	a, err := bundle.Open(archive)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	d, err := a.Description(ctx)
	if err != nil {
		return nil, err
	}
	ref := Ref{Hub: c.host, Owner: owner, Name: d.Name, Version: d.Version}
	if _, err := ParseRef(ref.String()); err != nil {
		return nil, fmt.Errorf("pushing %s: %w", archive, err)
	}
	if d.Delta != nil {
		return nil, fmt.Errorf("pushing %s: it is a delta archive: push the full package", archive)
	}
	sigs, err := a.Signatures(ctx)
	if err != nil {
		return nil, err
	}
	repo := c.host + "/" + owner + "/" + d.Name
	po := oci.PushOptions{RemoteOptions: c.remoteOptions(), Concurrency: o.Concurrency, Progress: o.Progress}
	res, err := oci.Push(ctx, a, []oci.PushImage{{Descriptor: a.Root(), Target: repo + ":" + d.Version}}, po)
	if err != nil {
		return nil, fmt.Errorf("pushing %s: %w", ref, err)
	}
	if len(sigs) > 0 {
		imgs := make([]oci.PushImage, len(sigs))
		for i, s := range sigs {
			imgs[i] = oci.PushImage{Descriptor: s.Descriptor, Target: repo}
		}
		sres, err := oci.Push(ctx, a, imgs, po)
		if err != nil {
			return nil, fmt.Errorf("pushing the signatures of %s: %w", ref, err)
		}
		res.BlobsPushed += sres.BlobsPushed
		res.BlobsSkipped += sres.BlobsSkipped
		res.BytesPushed += sres.BytesPushed
		res.BytesSkipped += sres.BytesSkipped
		res.ManifestsPushed += sres.ManifestsPushed
	}
	out := &PushResult{Ref: ref, Push: res}
	if o.NoSubmit {
		return out, nil
	}
	if out.Package, err = c.submit(ctx, owner, d.Name, d.Version, a.Root().Digest.String()); err != nil {
		return out, fmt.Errorf("submitting %s: %w", ref, err)
	}
	return out, nil
}

// PullOptions configures [Client.Pull].
type PullOptions struct {
	// Concurrency bounds parallel downloads; oci.DefaultConcurrency if zero.
	Concurrency int
	// StagingDir holds the per-output staging layouts that make an
	// interrupted pull resumable; "" means the user cache directory
	// (skiff/pull).
	StagingDir string
	// Transfer receives download events: oci.BlobStart and oci.BlobDone
	// for each blob (manifests too) fetched from the hub, oci.BlobSkipped
	// for a blob, or a manifest with everything below it, staged by an
	// earlier pull. Calls are serialized.
	Transfer func(oci.Event)
	// Progress receives archive-writing events.
	Progress func(bundle.Event)
}

// PullResult reports a pull.
type PullResult struct {
	Package *hubapi.Package
	Write   *bundle.WriteResult
	// Fetched is the number of blobs downloaded by this pull; the other
	// Write.Blobs - Fetched were staged by an earlier, interrupted one.
	Fetched int
}

// Pull writes the approved package owner/name:version as an archive at
// out. The package graph is copied from the hub into a staging OCI
// layout named for out, then the archive is written from it with
// bundle.Write: the same package gives the same bytes as the archive that
// was pushed, and its signatures still verify. The staging layout is kept
// when the pull fails or is interrupted, so that pulling to the same out
// again fetches only the blobs it lacks; it is removed once the archive
// is written (atomically: out is never left half written).
func (c *Client) Pull(ctx context.Context, owner, name, version, out string, o PullOptions) (*PullResult, error) {
	ref := Ref{Hub: c.host, Owner: owner, Name: name, Version: version}
	p, err := c.Package(ctx, owner, name, version)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	if p.Status != hubapi.StatusApproved {
		return nil, fmt.Errorf("pulling %s: it is %s, not approved: %w", ref, p.Status, hubapi.ErrNotFound)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	stage, err := bundle.StagingDir(o.StagingDir, "pull", abs)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	store, err := orasoci.NewWithContext(ctx, stage)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: opening the staging layout %s: %w (remove it and pull again)", ref, stage, err)
	}
	var (
		mu      sync.Mutex
		fetched int
	)
	emit := func(e oci.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Kind == oci.BlobDone {
			fetched++
		}
		if o.Transfer != nil {
			o.Transfer(e)
		}
	}
	event := func(k oci.EventKind, d ocispec.Descriptor) oci.Event {
		return oci.Event{Kind: k, Image: ref.String(), Digest: d.Digest, MediaType: d.MediaType, Size: d.Size}
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = oci.DefaultConcurrency
	}
	copts := oras.CopyGraphOptions{
		Concurrency: conc,
		PreCopy: func(_ context.Context, d ocispec.Descriptor) error {
			emit(event(oci.BlobStart, d))
			return nil
		},
		PostCopy: func(_ context.Context, d ocispec.Descriptor) error {
			emit(event(oci.BlobDone, d))
			return nil
		},
		OnCopySkipped: func(_ context.Context, d ocispec.Descriptor) error {
			emit(event(oci.BlobSkipped, d))
			return nil
		},
	}
	repo := c.repository(owner + "/" + name)
	for _, d := range append([]ocispec.Descriptor{p.Root}, p.Signatures...) {
		if err := oras.CopyGraph(ctx, repo, store, d, copts); err != nil {
			return nil, fmt.Errorf("pulling %s: %w (pull again to resume)", ref, err)
		}
	}
	w, err := bundle.Write(ctx, store, p.Root, out, bundle.WriteOptions{Signatures: p.Signatures, Progress: o.Progress})
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	os.RemoveAll(stage)
	return &PullResult{Package: p, Write: w, Fetched: fetched}, nil
}

// repository returns an authenticated OCI client of a hub repository.
func (c *Client) repository(repo string) *remote.Repository {
	ac := &auth.Client{
		Client: &http.Client{Transport: c.http.Transport},
		Cache:  auth.NewCache(),
	}
	if c.o.Token != "" {
		ac.Credential = auth.StaticCredential(c.host, auth.Credential{Username: c.o.Username, Password: c.o.Token})
	}
	return &remote.Repository{
		Client:    ac,
		Reference: registry.Reference{Registry: c.host, Repository: repo},
		PlainHTTP: c.plainHTTP(),
	}
}
