package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/bundle"
)

// maxManifest bounds the manifests the hub reads while they are pushed.
const maxManifest = 4 << 20

// ociRequest is a parsed /v2/ request.
type ociRequest struct {
	repo  string // OWNER/NAME...
	owner string
	name  string // the repository below the owner ("" for a one-part repo)
	kind  string // "", "catalog", "manifests", "blobs", "uploads", "tags", "referrers"
	ref   string // tag or digest; the upload id for uploads
}

// parseOCIPath splits a /v2/ path.
func parseOCIPath(path string) (ociRequest, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return ociRequest{}, path == "/v2"
	}
	if rest == "" {
		return ociRequest{}, true
	}
	if rest == "_catalog" {
		return ociRequest{kind: "catalog"}, true
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	var r ociRequest
	var name []string
	switch {
	case n >= 4 && seg[n-3] == "blobs" && seg[n-2] == "uploads":
		r.kind, r.ref, name = "uploads", seg[n-1], seg[:n-3]
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		r.kind, name = "uploads", seg[:n-2]
	case n >= 3 && (seg[n-2] == "manifests" || seg[n-2] == "blobs" || seg[n-2] == "referrers"):
		r.kind, r.ref, name = seg[n-2], seg[n-1], seg[:n-2]
	case n >= 3 && seg[n-2] == "tags" && seg[n-1] == "list":
		r.kind, name = "tags", seg[:n-2]
	default:
		return ociRequest{}, false
	}
	for _, s := range name {
		if s == "" || s == "." || s == ".." {
			return ociRequest{}, false
		}
	}
	r.repo = strings.Join(name, "/")
	r.owner = name[0]
	r.name = strings.Join(name[1:], "/")
	return r, true
}

// ociError writes an error in the distribution API's format.
func ociError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="skiff-hub"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// serveOCI authenticates and authorizes a /v2/ request, hides what the
// caller may not read, records pushed packages and referrers, and passes
// the rest to the embedded registry.
func (h *Hub) serveOCI(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, ok := parseOCIPath(r.URL.Path)
	if !ok {
		ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such endpoint")
		return
	}
	p, err := h.authenticate(r)
	if err != nil {
		msg := "authentication failed: log in with `skiff login` or check the token"
		if errors.Is(err, ErrOTPRequired) {
			msg = "this user has MFA on: use a token from `skiff login --otp CODE` instead of the password"
		} else if errors.Is(err, ErrTokenExpired) {
			msg = "the token expired: log in again with `skiff login`"
		} else if errors.Is(err, ErrRateLimited) {
			msg = "too many failed logins: wait a few minutes"
		}
		ociError(w, authStatus(err), "UNAUTHORIZED", msg)
		return
	}
	if p == nil {
		ociError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required: log in with `skiff login HUB`")
		return
	}
	switch req.kind {
	case "":
		h.registry.ServeHTTP(w, r)
		return
	case "catalog":
		h.serveCatalog(w, r, p)
		return
	}
	level := h.level(ctx, p, req.owner)
	need := LevelRead
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || req.kind == "uploads" {
		need = LevelWrite
	}
	if level < need {
		if r.Method == http.MethodDelete && (req.kind == "manifests" || req.kind == "blobs") {
			// Every registry delete is on the record, refused ones too; a
			// refusal changes nothing, so a failed append is only logged.
			_ = h.store.Audit(ctx, p.user, ActionRegistryDelete, req.repo+"@"+req.ref, map[string]any{"kind": req.kind, "refused": "no write permission"})
		}
		if level == LevelNone {
			ociError(w, http.StatusForbidden, "DENIED", fmt.Sprintf("user %s has no access to %s: ask an administrator of %s for a grant", p.user, req.owner, req.owner))
			return
		}
		ociError(w, http.StatusForbidden, "DENIED", fmt.Sprintf("user %s may only read %s: pushing needs write permission", p.user, req.owner))
		return
	}
	switch {
	case req.kind == "referrers":
		h.serveReferrers(w, r, req, level)
	case req.kind == "tags":
		h.serveTags(w, r, req, level)
	case req.kind == "manifests" && r.Method == http.MethodPut:
		h.putManifest(w, r, req, p)
	case (req.kind == "manifests" || req.kind == "blobs") && r.Method == http.MethodDelete:
		h.deleteContent(w, r, req, p)
	case req.kind == "manifests" || req.kind == "blobs":
		h.readContent(w, r, req, p, level)
	case req.kind == "uploads":
		h.upload(w, r, req, p)
	default:
		h.registry.ServeHTTP(w, r)
	}
}

// readContent gates manifest and blob reads. Readers see only content of
// approved packages (a tag only when it is an approved version, served by
// its recorded digest); writers see everything but the root of a package
// that is not approved (HEAD of it still works, for pushes).
func (h *Hub) readContent(w http.ResponseWriter, r *http.Request, req ociRequest, p *principal, level Level) {
	ctx := r.Context()
	isDigest := strings.Contains(req.ref, ":")
	notFound := func() {
		code := "MANIFEST_UNKNOWN"
		if req.kind == "blobs" {
			code = "BLOB_UNKNOWN"
		}
		ociError(w, http.StatusNotFound, code, "not found, or not an approved package")
	}
	var pkg *Package
	if req.kind == "manifests" {
		if !isDigest {
			if q, err := h.store.Package(ctx, req.owner, req.name, req.ref); err == nil {
				pkg = q
			}
		} else if ps, err := h.store.packagesByDigest(ctx, req.owner, req.name, req.ref); err == nil {
			for i := range ps {
				if pkg == nil || ps[i].Status == StatusApproved {
					pkg = &ps[i]
				}
			}
		}
	}
	if level < LevelWrite {
		if req.kind == "manifests" && !isDigest {
			if pkg == nil || pkg.Status != StatusApproved {
				notFound()
				return
			}
			// Serve the recorded digest, whatever the tag points at now.
			r = r.Clone(ctx)
			r.URL.Path = "/v2/" + req.repo + "/manifests/" + pkg.Digest
		} else if ok, err := h.store.approvedDigest(ctx, req.owner, req.name, req.ref); err != nil || !ok {
			notFound()
			return
		}
	} else if pkg != nil && pkg.Status != StatusApproved && r.Method == http.MethodGet {
		notFound()
		return
	}
	if pkg != nil && pkg.Status == StatusApproved && r.Method == http.MethodGet {
		// A package leaves the hub only on the record: the store logs a
		// failed append and the pull is refused (before anything is sent).
		if err := h.store.Audit(ctx, p.user, ActionPull, pkg.Ref(), map[string]any{"digest": pkg.Digest}); err != nil {
			ociError(w, http.StatusInternalServerError, "UNKNOWN", publicMessage(err))
			return
		}
	}
	h.registry.ServeHTTP(w, r)
}

// upload guards cross-repository mounts: the source must be readable
// whole (write) or the blob approved there; otherwise the mount
// parameters are dropped and a plain upload starts.
func (h *Hub) upload(w http.ResponseWriter, r *http.Request, req ociRequest, p *principal) {
	ctx := r.Context()
	q := r.URL.Query()
	if from, mount := q.Get("from"), q.Get("mount"); from != "" && mount != "" {
		src, ok := parseOCIPath("/v2/" + from + "/tags/list")
		allowed := false
		if ok {
			switch l := h.level(ctx, p, src.owner); {
			case l >= LevelWrite:
				allowed = true
			case l == LevelRead:
				allowed, _ = h.store.approvedDigest(ctx, src.owner, src.name, mount)
			}
		}
		if !allowed {
			q.Del("from")
			q.Del("mount")
			r = r.Clone(ctx)
			r.URL.RawQuery = q.Encode()
		}
	}
	if r.Method == http.MethodPost && h.o.MaxUnreferenced > 0 {
		n, err := h.store.unreferencedBytes(ctx, req.owner, h.o.Now().Add(-h.o.UploadPurgeAge))
		if err != nil {
			h.logger.Error("hub: counting unreferenced uploads", "owner", req.owner, "err", err)
			ociError(w, http.StatusInternalServerError, "UNKNOWN", "internal error: see the hub's log")
			return
		}
		if n >= h.o.MaxUnreferenced {
			ociError(w, http.StatusForbidden, "DENIED", fmt.Sprintf("%s holds %d bytes of blobs uploaded within %s that no pushed manifest references (the hub allows %d): finish or drop the pushes that uploaded them, or wait", req.owner, n, h.o.UploadPurgeAge, h.o.MaxUnreferenced))
			return
		}
	}
	sw := &statusWriter{ResponseWriter: w}
	h.registry.ServeHTTP(sw, r)
	if sw.status == http.StatusCreated {
		// A finished (or mounted) blob: it counts as unreferenced until
		// a manifest references it.
		d := q.Get("digest")
		if d == "" {
			d = q.Get("mount")
		}
		if d == "" {
			return
		}
		size, err := h.blobSize(ctx, req.repo, d)
		if err != nil {
			// Counted as 0 bytes: the bound on unreferenced uploads
			// is then looser, nothing else changes.
			h.logger.Warn("hub: reading the size of an uploaded blob", "repo", req.repo, "digest", d, "err", err)
		}
		if err := h.store.recordUpload(ctx, req.owner, req.repo, d, size); err != nil {
			h.logger.Error("hub: recording an upload", "repo", req.repo, "digest", d, "err", err)
		}
	}
}

// blobSize reads the size of blob d of repository repo from storage.
func (h *Hub) blobSize(ctx context.Context, repo, d string) (int64, error) {
	dg, err := digest.Parse(d)
	if err != nil {
		return 0, err
	}
	r, err := h.repository(ctx, repo)
	if err != nil {
		return 0, err
	}
	desc, err := r.Stat(ctx, dg)
	return desc.Size, err
}

// manifestHead is what the hub reads from a pushed manifest.
type manifestHead struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType"`
	Config       *ocispec.Descriptor  `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Subject      *ocispec.Descriptor  `json:"subject"`
	Annotations  map[string]string    `json:"annotations"`
}

// statusWriter records the status and adds headers just before it is
// written.
type statusWriter struct {
	http.ResponseWriter
	status int
	before func(status int, h http.Header)
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
		if s.before != nil {
			s.before(code, s.Header())
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// putManifest passes a manifest push on, refusing to move a published
// version's tag, and records package roots (quarantined) and referrers.
func (h *Hub) putManifest(w http.ResponseWriter, r *http.Request, req ociRequest, p *principal) {
	ctx := r.Context()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifest+1))
	if err != nil {
		ociError(w, http.StatusBadRequest, "MANIFEST_INVALID", "reading the manifest: "+err.Error())
		return
	}
	if len(body) > maxManifest {
		ociError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "the manifest is larger than 4 MiB")
		return
	}
	dgst := digest.FromBytes(body)
	if strings.Contains(req.ref, ":") {
		if d, err := digest.Parse(req.ref); err == nil && d.Algorithm() != digest.SHA256 {
			dgst = d.Algorithm().FromBytes(body)
		}
	}
	var head manifestHead
	json.Unmarshal(body, &head) // the registry validates; this only peeks
	isTag := !strings.Contains(req.ref, ":")
	if isTag {
		if err := h.store.CanPush(ctx, req.owner, req.name, req.ref, dgst.String()); err != nil {
			ociError(w, http.StatusForbidden, "DENIED", err.Error())
			return
		}
	}
	isPackage := head.ArtifactType == bundle.ArtifactTypePackage && head.MediaType == ocispec.MediaTypeImageIndex
	if isPackage {
		want := req.name + ":" + req.ref
		if got := head.Annotations[bundle.AnnotationRefName]; !isTag || got != want {
			ociError(w, http.StatusForbidden, "DENIED", fmt.Sprintf("package %q must be pushed to %s/NAME:VERSION with its own name and version; push it with `skiff push ARCHIVE HUB/%s`", got, req.owner, req.owner))
			return
		}
	}
	// A package's version is bound to its root before the tag moves: of
	// concurrent pushes of one version with different roots, one wins
	// and the others are refused here.
	var reserved *Package
	if isPackage {
		root := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: dgst, Size: int64(len(body)), ArtifactType: bundle.ArtifactTypePackage, Annotations: head.Annotations}
		pkg, created, err := h.store.recordPush(ctx, req.owner, req.name, req.ref, root, p.user, nil)
		switch {
		case errors.Is(err, ErrConflict):
			ociError(w, http.StatusForbidden, "DENIED", err.Error())
			return
		case err != nil:
			h.logger.Error("hub: recording a push", "repo", req.repo, "err", err)
			ociError(w, http.StatusInternalServerError, "UNKNOWN", publicMessage(err))
			return
		case created:
			reserved = pkg
		}
	}
	r2 := r.Clone(ctx)
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	sw := &statusWriter{ResponseWriter: w}
	if head.Subject != nil {
		sw.before = func(status int, hd http.Header) {
			if status == http.StatusCreated {
				hd.Set("OCI-Subject", head.Subject.Digest.String())
			}
		}
	}
	h.registry.ServeHTTP(sw, r2)
	if sw.status != http.StatusCreated {
		if reserved != nil {
			if err := h.store.releasePush(context.WithoutCancel(ctx), reserved, p.user); err != nil && !errors.Is(err, errChanged) {
				h.logger.Error("hub: withdrawing a failed push", "package", reserved.Ref(), "err", err)
			}
		}
		return
	}
	var used []string
	if head.Config != nil {
		used = append(used, head.Config.Digest.String())
	}
	for _, l := range head.Layers {
		used = append(used, l.Digest.String())
	}
	if err := h.store.referenceUploads(ctx, req.repo, used); err != nil {
		h.logger.Error("hub: recording referenced uploads", "repo", req.repo, "err", err)
	}
	desc := ocispec.Descriptor{MediaType: head.MediaType, Digest: dgst, Size: int64(len(body)), ArtifactType: head.ArtifactType, Annotations: head.Annotations}
	if head.Subject != nil {
		if desc.ArtifactType == "" && head.Config != nil {
			desc.ArtifactType = head.Config.MediaType
		}
		if err := h.store.addReferrer(ctx, req.repo, head.Subject.Digest.String(), desc); err != nil {
			h.logger.Error("hub: recording a referrer", "repo", req.repo, "digest", dgst, "err", err)
		}
	}
}

// deleteContent guards registry deletes: a version tag of a package,
// and every digest reachable from a quarantined, pending, approved or
// blocked package of the repository (its root, manifests, blobs and
// signatures), cannot be deleted through /v2/ by anyone (`skiff hub
// remove` withdraws a package). Every delete, done or refused, is
// audited; one that cannot be recorded is not made.
func (h *Hub) deleteContent(w http.ResponseWriter, r *http.Request, req ociRequest, p *principal) {
	ctx := r.Context()
	target := req.repo + "@" + req.ref
	if !strings.Contains(req.ref, ":") {
		target = req.repo + ":" + req.ref
	}
	details := map[string]any{"kind": req.kind}
	refusal, err := h.protectedRef(ctx, req)
	if err != nil {
		h.logger.Error("hub: checking a registry delete", "target", target, "err", err)
		ociError(w, http.StatusInternalServerError, "UNKNOWN", "internal error: see the hub's log")
		return
	}
	if refusal != "" {
		details["refused"] = refusal
		// A refusal changes nothing: a failed append is only logged.
		_ = h.store.Audit(ctx, p.user, ActionRegistryDelete, target, details)
		ociError(w, http.StatusForbidden, "DENIED", refusal)
		return
	}
	if err := h.store.Audit(ctx, p.user, ActionRegistryDelete, target, details); err != nil {
		ociError(w, http.StatusInternalServerError, "UNKNOWN", publicMessage(err))
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	h.registry.ServeHTTP(sw, r)
	if req.kind == "manifests" && sw.status == http.StatusAccepted && strings.Contains(req.ref, ":") {
		h.store.deleteReferrer(ctx, req.repo, req.ref)
	}
	if req.kind == "blobs" && sw.status == http.StatusAccepted {
		h.store.referenceUploads(ctx, req.repo, []string{req.ref}) // gone, so no longer pending
	}
}

// protectedRef returns why the manifest or blob req names may not be
// deleted, or "".
func (h *Hub) protectedRef(ctx context.Context, req ociRequest) (string, error) {
	immutable := func(p *Package, what string) string {
		return fmt.Sprintf("%s is part of package %s (%s), which is immutable: withdraw the package with `skiff hub remove %s`", what, p.Ref(), p.Status, p.Ref())
	}
	pkgs, err := h.store.livePackages(ctx, req.owner, req.name)
	if err != nil {
		return "", err
	}
	if !strings.Contains(req.ref, ":") {
		if req.kind == "manifests" {
			for i := range pkgs {
				if pkgs[i].Version == req.ref {
					return immutable(&pkgs[i], "tag "+req.ref), nil
				}
			}
		}
		return "", nil
	}
	for i := range pkgs {
		set, err := h.packageContent(ctx, &pkgs[i])
		if err != nil {
			return "", err
		}
		if set[req.ref] {
			return immutable(&pkgs[i], req.ref), nil
		}
	}
	return "", nil
}

// packageContent returns the digests of p: those its review recorded,
// and those reachable in the hub's storage from its root and from the
// manifests referring to it (signatures), as far as they were pushed.
func (h *Hub) packageContent(ctx context.Context, p *Package) (map[string]bool, error) {
	set := map[string]bool{}
	recorded, err := h.store.PackageDigests(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range recorded {
		set[d] = true
	}
	refs, err := h.store.referrers(ctx, p.Repository(), p.Digest)
	if err != nil {
		return nil, err
	}
	repo, err := h.repository(ctx, p.Repository())
	if err != nil {
		return nil, err
	}
	reached, err := h.closure(ctx, repo, append([]ocispec.Descriptor{p.Root}, refs...), true)
	if err != nil {
		return nil, err
	}
	for _, d := range reached {
		set[d] = true
	}
	return set, nil
}

// serveReferrers answers the referrers API from the recorded referrers.
func (h *Hub) serveReferrers(w http.ResponseWriter, r *http.Request, req ociRequest, level Level) {
	ctx := r.Context()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		ociError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "use GET")
		return
	}
	if _, err := digest.Parse(req.ref); err != nil {
		ociError(w, http.StatusBadRequest, "DIGEST_INVALID", "the subject must be a digest")
		return
	}
	refs, err := h.store.referrers(ctx, req.repo, req.ref)
	if err != nil {
		ociError(w, http.StatusInternalServerError, "UNKNOWN", "listing referrers")
		return
	}
	out := []ocispec.Descriptor{}
	at := r.URL.Query().Get("artifactType")
	for _, d := range refs {
		if at != "" && d.ArtifactType != at {
			continue
		}
		if level < LevelWrite {
			if ok, _ := h.store.approvedDigest(ctx, req.owner, req.name, d.Digest.String()); !ok {
				continue
			}
		}
		out = append(out, d)
	}
	b, _ := json.Marshal(ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: out})
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Write(b)
}

// serveTags lists tags; readers see approved versions only.
func (h *Hub) serveTags(w http.ResponseWriter, r *http.Request, req ociRequest, level Level) {
	if level >= LevelWrite {
		h.registry.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	approved := map[string]bool{}
	ps, err := h.store.Packages(ctx, PackageQuery{Owner: req.owner, Status: StatusApproved})
	if err != nil {
		ociError(w, http.StatusInternalServerError, "UNKNOWN", "listing packages")
		return
	}
	for _, p := range ps {
		if p.Name == req.name {
			approved[p.Version] = true
		}
	}
	rec := newCapture()
	h.registry.ServeHTTP(rec, r)
	if rec.status != http.StatusOK {
		if len(approved) == 0 {
			ociError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such repository")
			return
		}
		copyResponse(w, rec)
		return
	}
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	json.Unmarshal(rec.body.Bytes(), &list)
	kept := []string{}
	for _, t := range list.Tags {
		if approved[t] {
			kept = append(kept, t)
		}
	}
	list.Tags = kept
	b, _ := json.Marshal(list)
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Write(b)
}

// serveCatalog lists the repositories whose owner the caller may read.
func (h *Hub) serveCatalog(w http.ResponseWriter, r *http.Request, p *principal) {
	rec := newCapture()
	h.registry.ServeHTTP(rec, r)
	if rec.status != http.StatusOK {
		copyResponse(w, rec)
		return
	}
	var cat struct {
		Repositories []string `json:"repositories"`
	}
	json.Unmarshal(rec.body.Bytes(), &cat)
	levels := map[string]Level{}
	kept := []string{}
	for _, repo := range cat.Repositories {
		owner, _, _ := strings.Cut(repo, "/")
		l, ok := levels[owner]
		if !ok {
			l = h.level(r.Context(), p, owner)
			levels[owner] = l
		}
		if l >= LevelRead {
			kept = append(kept, repo)
		}
	}
	cat.Repositories = kept
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	json.NewEncoder(w).Encode(cat)
}

// capture holds the registry's answer to a listing request (tags,
// catalog) for the hub to filter before the client gets it. It is the
// answer to the client's own request, passed through distribution for
// its validation and pagination; the hub reads content for itself
// through the storage API ([Hub.repository]).
type capture struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func newCapture() *capture { return &capture{header: http.Header{}, status: http.StatusOK} }

func (c *capture) Header() http.Header { return c.header }

func (c *capture) WriteHeader(code int) {
	if !c.wrote {
		c.status, c.wrote = code, true
	}
}

func (c *capture) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return c.body.Write(b)
}

func copyResponse(w http.ResponseWriter, rec *capture) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
}

// closure returns every digest reachable from roots in src. With
// partial, a manifest src lacks (or cannot decode) ends that branch
// instead of failing: the content of a push still in progress.
func (h *Hub) closure(ctx context.Context, src interface {
	Fetch(context.Context, ocispec.Descriptor) (io.ReadCloser, error)
}, roots []ocispec.Descriptor, partial bool) ([]string, error) {
	seen := map[digest.Digest]bool{}
	var out []string
	var walk func(d ocispec.Descriptor) error
	walk = func(d ocispec.Descriptor) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		out = append(out, d.Digest.String())
		if !isManifestType(d.MediaType) {
			return nil
		}
		rc, err := src.Fetch(ctx, d)
		if err != nil {
			if partial && ctx.Err() == nil {
				return nil
			}
			return err
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
		rc.Close()
		if err != nil {
			if partial && ctx.Err() == nil {
				return nil
			}
			return err
		}
		var m struct {
			Config    *ocispec.Descriptor  `json:"config"`
			Layers    []ocispec.Descriptor `json:"layers"`
			Manifests []ocispec.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			if partial {
				return nil
			}
			return fmt.Errorf("decoding %s: %w", d.Digest, err)
		}
		var next []ocispec.Descriptor
		if m.Config != nil {
			next = append(next, *m.Config)
		}
		next = append(append(next, m.Layers...), m.Manifests...)
		for _, c := range next {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, r := range roots {
		if err := walk(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func isManifestType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}
