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
	"strconv"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"

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
	// Actor must be a site administrator.
	Actor string
}

// Export writes the approved packages approved since o.Since to w as
// one tar: the manifest (ExportManifestName) first, then each package as
// a Skiff archive rebuilt from the hub's storage (byte-identical to the
// archive pushed). Blobs shared by packages are stored in each archive.
// The archives are written under ROOT/tmp first, so that the manifest
// can carry their sha256; nothing is written to w before they all are.
func (h *Hub) Export(ctx context.Context, w io.Writer, o ExportOptions) (*ExportManifest, error) {
	if err := h.requireSiteAdmin(ctx, o.Actor, "exporting packages"); err != nil {
		return nil, err
	}
	all, err := h.store.Packages(ctx, PackageQuery{Status: StatusApproved})
	if err != nil {
		return nil, err
	}
	tmp, err := h.tempDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmp, "export-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	m := &ExportManifest{Format: ExportFormat, Created: h.o.Now().UTC(), Since: o.Since.UTC(), Packages: []ExportEntry{}}
	var files []string
	for _, p := range all {
		if p.Updated.Before(o.Since) {
			continue
		}
		file := filepath.Join(dir, strconv.Itoa(len(files))+".skiff")
		res, err := bundle.Write(ctx, h.localRepository(p.Repository()), p.Root, file, bundle.WriteOptions{Signatures: p.Signatures, Digest: true})
		if err != nil {
			return nil, fmt.Errorf("exporting %s: %w: run `skiff hub check` on the hub directory", p.Ref(), err)
		}
		files = append(files, file)
		m.Packages = append(m.Packages, ExportEntry{
			Owner: p.Owner, Name: p.Name, Version: p.Version, Digest: p.Digest, Approved: p.Updated,
			Path: exportPath(p.Owner, p.Name, p.Version), Size: res.Bytes, SHA256: res.Digest.Encoded(),
		})
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(w)
	if err := writeTarMember(tw, ExportManifestName, int64(len(mb)), bytes.NewReader(mb)); err != nil {
		return nil, err
	}
	for i, e := range m.Packages {
		f, err := os.Open(files[i])
		if err != nil {
			return nil, err
		}
		err = writeTarMember(tw, e.Path, e.Size, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("writing %s to the export: %w", e.Ref(), err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// An export changes nothing; the failure to record it is logged
	// (by the store), not fatal: the export has been written already.
	_ = h.store.Audit(ctx, o.Actor, ActionExport, "", map[string]any{"since": m.Since, "packages": len(m.Packages)})
	return m, nil
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
func ReadExport(r io.Reader, fn func(e ExportEntry, r io.Reader) error) (*ExportManifest, error) {
	return hubapi.ReadExport(r, fn)
}

func exportPath(owner, name, version string) string { return hubapi.ExportPath(owner, name, version) }

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
// rejected. Approvals never travel. The whole export is read into
// ROOT/tmp and checked first (every entry's sha256 against the manifest,
// then every archive verified, its name, version and root matching the
// manifest): if anything is wrong, nothing is stored. Importing the same
// export again changes nothing.
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
	files := map[string]string{}
	m, err := ReadExport(r, func(e ExportEntry, r io.Reader) error {
		file := filepath.Join(dir, strconv.Itoa(len(files))+".skiff")
		files[e.Path] = file
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%w: reading %s: %v", ErrBadExport, e.Ref(), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The export is read: finish even if the client goes away.
	ctx = context.WithoutCancel(ctx)
	for _, e := range m.Packages {
		if err := checkExported(ctx, e, files[e.Path]); err != nil {
			return nil, err
		}
	}
	res := &ImportResult{Packages: []ImportedPackage{}}
	for _, e := range m.Packages {
		ip := ImportedPackage{Package: e.Ref(), Digest: e.Digest}
		p, err := h.ingest(ctx, e, files[e.Path], o.Actor)
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
	if err := h.store.Audit(ctx, o.Actor, ActionImport, "", map[string]any{"created": m.Created, "packages": res.Packages}); err != nil {
		return res, markMade(err)
	}
	return res, nil
}

// checkExported verifies an exported archive and that it is the package
// the manifest says.
func checkExported(ctx context.Context, e ExportEntry, file string) error {
	vr, err := bundle.Verify(ctx, file, bundle.VerifyOptions{})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadExport, e.Ref(), err)
	}
	if vr.Root.Digest.String() != e.Digest {
		return fmt.Errorf("%w: %s has root %s, the manifest says %s: the export was altered", ErrBadExport, e.Ref(), vr.Root.Digest, e.Digest)
	}
	a, err := bundle.Open(file)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadExport, e.Ref(), err)
	}
	defer a.Close()
	d, err := a.Description(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadExport, e.Ref(), err)
	}
	if d.Name != e.Name || d.Version != e.Version || d.Delta != nil {
		return fmt.Errorf("%w: %s holds the package %s:%s (delta %v)", ErrBadExport, e.Ref(), d.Name, d.Version, d.Delta != nil)
	}
	return nil
}

// ingest stores an archive's graph, tag and signatures in the hub's
// storage, records the push and submits the package, as a push would.
func (h *Hub) ingest(ctx context.Context, e ExportEntry, file, actor string) (*Package, error) {
	if err := h.store.CanPush(ctx, e.Owner, e.Name, e.Version, e.Digest); err != nil {
		return nil, err
	}
	if p, err := h.store.Package(ctx, e.Owner, e.Name, e.Version); err == nil && p.Digest == e.Digest && published(p.Status) {
		return p, nil // imported before
	}
	a, err := bundle.Open(file)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	sigs, err := a.Signatures(ctx)
	if err != nil {
		return nil, err
	}
	repoName := e.Owner + "/" + e.Name
	repo := h.localRepository(repoName)
	root := a.Root()
	if err := oras.CopyGraph(ctx, a, repo, root, oras.DefaultCopyGraphOptions); err != nil {
		return nil, fmt.Errorf("storing: %w", err)
	}
	// Bind the version to this root before the tag moves (as a push).
	rec, err := pushedDescriptor(ctx, a, root)
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
		if err := oras.CopyGraph(ctx, a, repo, s.Descriptor, oras.DefaultCopyGraphOptions); err != nil {
			return nil, fmt.Errorf("storing a signature: %w", err)
		}
		desc, err := pushedDescriptor(ctx, a, s.Descriptor)
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
func pushedDescriptor(ctx context.Context, a *bundle.Archive, d ocispec.Descriptor) (ocispec.Descriptor, error) {
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
