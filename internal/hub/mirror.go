package hub

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/hubapi"
)

// ExportFormat is [hubapi.ExportFormat].
const ExportFormat = hubapi.ExportFormat

// ExportManifestName is [hubapi.ExportManifestName].
const ExportManifestName = hubapi.ExportManifestName

// ErrBadExport is [hubapi.ErrBadExport].
var ErrBadExport = hubapi.ErrBadExport

// Import and export audit actions.
const (
	ActionExport = "export"
	ActionImport = "import"
)

// ExportManifest is [hubapi.ExportManifest].
type ExportManifest = hubapi.ExportManifest

// ExportEntry is [hubapi.ExportEntry].
type ExportEntry = hubapi.ExportEntry

// ExportOptions configures [Hub.Export].
type ExportOptions struct {
	// Since selects packages approved (or changed) at or after it.
	Since time.Time
	// Have lists blobs the receiving hub holds (its [Hub.Inventory]):
	// the export leaves them out and lists them as omitted.
	Have []string
	// Actor must be a site administrator.
	Actor string
}

// Export writes the approved packages approved since o.Since to w as
// one tar: the manifest (ExportManifestName) first, listing each
// package's root and signatures and every blob, then each blob once
// (content-addressed, at ExportBlobPath), however many packages share
// it. Blobs in o.Have are left out. The graphs are walked (manifests
// read) before anything is written to w; each blob is verified while it
// is copied, so a corrupt blob in storage fails the export midway.
func (h *Hub) Export(ctx context.Context, w io.Writer, o ExportOptions) (*ExportManifest, error) {
	if err := h.requireSiteAdmin(ctx, o.Actor, "exporting packages"); err != nil {
		return nil, err
	}
	all, err := h.store.Packages(ctx, PackageQuery{Status: StatusApproved})
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(o.Have))
	for _, d := range o.Have {
		have[d] = true
	}
	m := &ExportManifest{Format: ExportFormat, Created: h.o.Now().UTC(), Since: o.Since.UTC(), Packages: []ExportEntry{}, Blobs: []ExportBlob{}}
	listed := map[digest.Digest]bool{}
	var blobs []ocispec.Descriptor // m.Blobs
	var from []string              // the repository each blob is read from
	for _, p := range all {
		if p.Updated.Before(o.Since) {
			continue
		}
		roots := append([]ocispec.Descriptor{p.Root}, p.Signatures...)
		repo, err := h.repository(ctx, p.Repository())
		if err != nil {
			return nil, fmt.Errorf("exporting %s: %w", p.Ref(), err)
		}
		graph, err := bundle.Graph(ctx, repo, roots)
		if err != nil {
			return nil, fmt.Errorf("exporting %s: %w: run `skiff hub check` on the hub directory", p.Ref(), err)
		}
		e := ExportEntry{Owner: p.Owner, Name: p.Name, Version: p.Version, Digest: p.Digest, Approved: p.Updated}
		for _, s := range p.Signatures {
			e.Signatures = append(e.Signatures, s.Digest.String())
		}
		for _, b := range graph {
			e.Size += b.Size
			if listed[b.Digest] {
				continue
			}
			listed[b.Digest] = true
			eb := ExportBlob{MediaType: b.MediaType, Digest: b.Digest.String(), Size: b.Size}
			if have[eb.Digest] {
				m.Omitted = append(m.Omitted, eb)
				continue
			}
			m.Blobs = append(m.Blobs, eb)
			blobs = append(blobs, b)
			from = append(from, p.Repository())
		}
		m.Packages = append(m.Packages, e)
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(w)
	if err := writeTarMember(tw, ExportManifestName, int64(len(mb)), bytes.NewReader(mb)); err != nil {
		return nil, err
	}
	for i, b := range blobs {
		if err := h.exportBlob(ctx, tw, from[i], b); err != nil {
			return nil, fmt.Errorf("writing blob %s (of %s) to the export: %w", b.Digest, from[i], err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// An export changes nothing; the failure to record it is logged
	// (by the store), not fatal: the export has been written already.
	_ = h.store.Audit(ctx, o.Actor, ActionExport, "", map[string]any{"since": m.Since, "packages": len(m.Packages), "blobs": len(m.Blobs), "omitted": len(m.Omitted)})
	return m, nil
}

// exportBlob copies blob b of repository repo into the export, verified.
func (h *Hub) exportBlob(ctx context.Context, tw *tar.Writer, repo string, b ocispec.Descriptor) error {
	r, err := h.repository(ctx, repo)
	if err != nil {
		return err
	}
	rc, err := r.Fetch(ctx, b)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := content.NewVerifyReader(rc, b)
	if err := writeTarMember(tw, ExportBlobPath(b.Digest.String()), b.Size, vr); err != nil {
		return err
	}
	return vr.Verify()
}

func writeTarMember(tw *tar.Writer, name string, size int64, r io.Reader) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, Format: tar.FormatPAX, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: wrote %d bytes, want %d", name, n, size)
	}
	return nil
}

// ReadExport is [hubapi.ReadExport].
func ReadExport(r io.Reader, manifest func(*ExportManifest) error, blob func(b ExportBlob, r io.Reader) error) (*ExportManifest, error) {
	return hubapi.ReadExport(r, manifest, blob)
}

// ExportBlob is [hubapi.ExportBlob].
type ExportBlob = hubapi.ExportBlob

// ExportBlobPath is [hubapi.ExportBlobPath].
func ExportBlobPath(digest string) string { return hubapi.ExportBlobPath(digest) }

// Inventory is [hubapi.Inventory].
type Inventory = hubapi.Inventory

// Inventory lists the blobs this hub holds for its pending, approved and
// blocked packages (every digest recorded for them), for an export on
// another hub that leaves them out. Actor must be a site administrator.
func (h *Hub) Inventory(ctx context.Context, actor string) (*Inventory, error) {
	if err := h.requireSiteAdmin(ctx, actor, "reading the hub's inventory"); err != nil {
		return nil, err
	}
	blobs, err := h.store.publishedDigests(ctx)
	if err != nil {
		return nil, err
	}
	return &Inventory{Format: hubapi.InventoryFormat, Created: h.o.Now().UTC(), Blobs: blobs}, nil
}

// ImportOptions configures [Hub.Import].
type ImportOptions struct {
	// Actor must be a site administrator; the imported packages are
	// recorded as uploaded by them (so they cannot approve them).
	Actor string
}

// ImportedPackage is [hubapi.ImportedPackage].
type ImportedPackage = hubapi.ImportedPackage

// ImportResult is [hubapi.ImportResult].
type ImportResult = hubapi.ImportResult

// Import reads an export (see [Hub.Export]) and publishes every package
// through the same pipeline as a push: it is recorded quarantined with
// the actor as uploader, then its gates run (structure, signature with
// this hub's trust directory, added gates); it ends pending or
// rejected. Approvals never travel. Every blob the export leaves out
// must be held by this hub (for one of its published packages): if not,
// the import is refused before the blobs are read, naming them. The
// whole export is read into ROOT/tmp and checked first (every blob's
// sha256, every package's graph complete, its name and version those
// the manifest names): if anything is wrong, nothing is stored.
// Importing the same export again changes nothing.
func (h *Hub) Import(ctx context.Context, r io.Reader, o ImportOptions) (*ImportResult, error) {
	if err := h.requireSiteAdmin(ctx, o.Actor, "importing packages"); err != nil {
		return nil, err
	}
	tmp, err := h.tempDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmp, "import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src := &importSource{h: h, dir: dir, read: map[digest.Digest]bool{}, held: map[digest.Digest]string{}}
	m, err := ReadExport(r, func(m *ExportManifest) error {
		return src.resolveOmitted(ctx, m.Omitted)
	}, func(b ExportBlob, r io.Reader) error {
		d := digest.Digest(b.Digest)
		f, err := os.Create(src.file(d))
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%w: reading blob %s: %v", ErrBadExport, b.Digest, err)
		}
		src.read[d] = true // ReadExport fails if the content does not match
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The export is read: finish even if the client goes away.
	ctx = context.WithoutCancel(ctx)
	descs := map[string]ocispec.Descriptor{}
	src.sizes = map[digest.Digest]int64{}
	for _, list := range [][]ExportBlob{m.Blobs, m.Omitted} {
		for _, b := range list {
			descs[b.Digest] = ocispec.Descriptor{MediaType: b.MediaType, Digest: digest.Digest(b.Digest), Size: b.Size}
			src.sizes[digest.Digest(b.Digest)] = b.Size
		}
	}
	roots := make([][]ocispec.Descriptor, len(m.Packages))
	used := map[digest.Digest]bool{}
	for i, e := range m.Packages {
		roots[i] = []ocispec.Descriptor{descs[e.Digest]}
		for _, s := range e.Signatures {
			roots[i] = append(roots[i], descs[s])
		}
		graph, err := checkExported(ctx, e, src, roots[i])
		if err != nil {
			return nil, err
		}
		for _, d := range graph {
			used[d.Digest] = true
		}
	}
	for _, list := range [][]ExportBlob{m.Blobs, m.Omitted} {
		for _, b := range list {
			if !used[digest.Digest(b.Digest)] {
				return nil, fmt.Errorf("%w: blob %s belongs to none of the packages: the export was altered", ErrBadExport, b.Digest)
			}
		}
	}
	res := &ImportResult{Packages: []ImportedPackage{}}
	for i, e := range m.Packages {
		ip := ImportedPackage{Package: e.Ref(), Digest: e.Digest}
		p, err := h.ingest(ctx, e, src, roots[i][0], roots[i][1:], o.Actor)
		switch {
		case errors.Is(err, ErrConflict):
			ip.Status, ip.Error = "refused", err.Error()
		case err != nil:
			return res, fmt.Errorf("importing %s: %w", e.Ref(), err)
		default:
			ip.Status, ip.Gates = p.Status, p.Gates
		}
		res.Packages = append(res.Packages, ip)
	}
	// Each package's push and submission were audited with it; this
	// entry sums the import up after the fact, so its failure fails the
	// request although the packages are in.
	if err := h.store.Audit(ctx, o.Actor, ActionImport, "", map[string]any{"created": m.Created, "packages": res.Packages, "blobs": len(m.Blobs), "omitted": len(m.Omitted)}); err != nil {
		return res, markMade(err)
	}
	return res, nil
}

// importSource is the content of an import: the blobs read from the
// export (files under dir) and those it left out, read from this hub's
// storage (the repository holding each).
type importSource struct {
	h    *Hub
	dir  string
	read map[digest.Digest]bool
	held map[digest.Digest]string
	// sizes are the sizes the manifest lists (exported and omitted).
	sizes map[digest.Digest]int64
}

func (s *importSource) file(d digest.Digest) string { return filepath.Join(s.dir, d.Encoded()) }

// resolveOmitted finds, for every blob the export left out, a repository
// of this hub holding it; it fails naming those none holds.
func (s *importSource) resolveOmitted(ctx context.Context, omitted []ExportBlob) error {
	var missing []string
	for _, b := range omitted {
		repo, err := s.h.store.repositoryHolding(ctx, b.Digest)
		if err != nil {
			return err
		}
		desc := ocispec.Descriptor{MediaType: b.MediaType, Digest: digest.Digest(b.Digest), Size: b.Size}
		if repo != "" {
			r, err := s.h.repository(ctx, repo)
			if err != nil {
				return err
			}
			ok, err := r.Exists(ctx, desc)
			if err != nil {
				return fmt.Errorf("looking for blob %s in %s: %w", b.Digest, repo, err)
			}
			if !ok {
				repo = ""
			}
		}
		if repo == "" {
			missing = append(missing, b.Digest)
			continue
		}
		s.held[desc.Digest] = repo
	}
	if len(missing) == 0 {
		return nil
	}
	more := ""
	if len(missing) > 5 {
		more = fmt.Sprintf(" and %d more", len(missing)-5)
		missing = missing[:5]
	}
	return fmt.Errorf("%w: it leaves out %s%s, which this hub does not hold: it was exported against another hub's inventory, or an older one; run `skiff hub inventory` on this hub and export again with --against", ErrBadExport, strings.Join(missing, ", "), more)
}

func (s *importSource) Exists(_ context.Context, d ocispec.Descriptor) (bool, error) {
	_, held := s.held[d.Digest]
	return s.read[d.Digest] || held, nil
}

func (s *importSource) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if s.read[d.Digest] {
		return os.Open(s.file(d.Digest))
	}
	if repo, ok := s.held[d.Digest]; ok {
		r, err := s.h.repository(ctx, repo)
		if err != nil {
			return nil, err
		}
		return r.Fetch(ctx, d)
	}
	return nil, fmt.Errorf("blob %s is neither in the export nor listed as omitted: %w", d.Digest, errdef.ErrNotFound)
}

// mountFrom names the repository holding a blob the export left out, so
// that it is linked, not copied.
func (s *importSource) mountFrom(_ context.Context, d ocispec.Descriptor) ([]string, error) {
	if repo, ok := s.held[d.Digest]; ok && !s.read[d.Digest] {
		return []string{repo}, nil
	}
	return nil, nil
}

// checkExported checks that a package's graph is complete in src and
// that it is the package the manifest says; it returns the graph.
func checkExported(ctx context.Context, e ExportEntry, src *importSource, roots []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	root := roots[0]
	if root.MediaType != ocispec.MediaTypeImageIndex {
		return nil, fmt.Errorf("%w: %s: the root %s has media type %q, not a package root index", ErrBadExport, e.Ref(), root.Digest, root.MediaType)
	}
	graph, err := bundle.Graph(ctx, src, roots)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadExport, e.Ref(), err)
	}
	// Graph read the manifests; the other blobs must be there too.
	for _, d := range graph {
		if ok, _ := src.Exists(ctx, d); !ok {
			return nil, fmt.Errorf("%w: %s needs blob %s, which is neither in the export nor listed as omitted", ErrBadExport, e.Ref(), d.Digest)
		}
		if size := src.sizes[d.Digest]; size != d.Size {
			return nil, fmt.Errorf("%w: %s refers to blob %s of %d bytes, the manifest lists %d", ErrBadExport, e.Ref(), d.Digest, d.Size, size)
		}
	}
	d, err := bundle.ReadDescription(ctx, src, root)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadExport, e.Ref(), err)
	}
	if d.Name != e.Name || d.Version != e.Version || d.Delta != nil {
		return nil, fmt.Errorf("%w: %s holds the package %s:%s (delta %v)", ErrBadExport, e.Ref(), d.Name, d.Version, d.Delta != nil)
	}
	return graph, nil
}

// ingest stores a package's graph, tag and signatures in the hub's
// storage, records the push and submits the package, as a push would.
func (h *Hub) ingest(ctx context.Context, e ExportEntry, src *importSource, root ocispec.Descriptor, sigs []ocispec.Descriptor, actor string) (*Package, error) {
	if err := h.store.CanPush(ctx, e.Owner, e.Name, e.Version, e.Digest); err != nil {
		return nil, err
	}
	if p, err := h.store.Package(ctx, e.Owner, e.Name, e.Version); err == nil && p.Digest == e.Digest && published(p.Status) {
		return p, nil // imported before
	}
	repoName := e.Owner + "/" + e.Name
	repo, err := h.repository(ctx, repoName)
	if err != nil {
		return nil, err
	}
	opts := oras.DefaultCopyGraphOptions
	opts.MountFrom = src.mountFrom
	if err := oras.CopyGraph(ctx, src, repo, root, opts); err != nil {
		return nil, fmt.Errorf("storing: %w", err)
	}
	// Bind the version to this root before the tag moves (as a push).
	rec, err := pushedDescriptor(ctx, src, root)
	if err != nil {
		return nil, err
	}
	if _, _, err := h.store.recordPush(ctx, e.Owner, e.Name, e.Version, rec, actor, map[string]any{"import": true}); err != nil {
		return nil, err
	}
	if err := repo.Tag(ctx, root, e.Version); err != nil {
		return nil, fmt.Errorf("tagging: %w", err)
	}
	for _, s := range sigs {
		if err := oras.CopyGraph(ctx, src, repo, s, opts); err != nil {
			return nil, fmt.Errorf("storing a signature: %w", err)
		}
		desc, err := pushedDescriptor(ctx, src, s)
		if err != nil {
			return nil, err
		}
		if err := h.store.addReferrer(ctx, repoName, root.Digest.String(), desc); err != nil {
			return nil, err
		}
	}
	return h.Submit(ctx, e.Owner, e.Name, e.Version, actor)
}

// pushedDescriptor describes manifest d as putManifest records it when
// it is pushed: media type, artifact type and annotations from its body.
func pushedDescriptor(ctx context.Context, a content.Fetcher, d ocispec.Descriptor) (ocispec.Descriptor, error) {
	rc, err := a.Fetch(ctx, d)
	if err != nil {
		return d, err
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	rc.Close()
	if err != nil {
		return d, err
	}
	var head manifestHead
	if err := json.Unmarshal(b, &head); err != nil {
		return d, fmt.Errorf("decoding manifest %s: %w", d.Digest, err)
	}
	desc := ocispec.Descriptor{MediaType: head.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: head.ArtifactType, Annotations: head.Annotations}
	if desc.ArtifactType == "" && head.Config != nil {
		desc.ArtifactType = head.Config.MediaType
	}
	return desc, nil
}

// requireSiteAdmin fails unless user is a site administrator.
func (h *Hub) requireSiteAdmin(ctx context.Context, user, what string) error {
	u, err := h.store.User(ctx, user)
	if err != nil {
		return err
	}
	if !u.Admin {
		return fmt.Errorf("%w: %s needs a site administrator", ErrForbidden, what)
	}
	return nil
}
