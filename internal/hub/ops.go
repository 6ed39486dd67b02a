package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/skiffhq/skiff/internal/hubapi"
)

// opsRoutes adds the operations endpoints: rescan, export and import.
func (h *Hub) opsRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /api/v1/rescan", h.authed(h.apiRescan))
	m.HandleFunc("GET /api/v1/export", h.authed(h.apiExport))
	m.HandleFunc("POST /api/v1/export", h.authed(h.apiExport))
	m.HandleFunc("GET /api/v1/inventory", h.authed(h.apiInventory))
	m.HandleFunc("POST /api/v1/import", h.authed(h.apiImport))
}

// RescanRequest is [hubapi.RescanRequest].
type RescanRequest = hubapi.RescanRequest

// RescanResponse is [hubapi.RescanResponse].
type RescanResponse = hubapi.RescanResponse

func (h *Hub) apiRescan(w http.ResponseWriter, r *http.Request, p *principal) {
	var req RescanRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.All == (req.Owner != "") {
		writeError(w, fmt.Errorf("%w: name one package (owner, name, version) or all", ErrInvalid))
		return
	}
	// Rescans outlive a dropped connection.
	res, err := h.Rescan(context.WithoutCancel(r.Context()), RescanOptions{Owner: req.Owner, Name: req.Name, Version: req.Version, All: req.All, Actor: p.user})
	if err != nil {
		writeError(w, err)
		return
	}
	if res == nil {
		res = []RescanResult{}
	}
	writeJSON(w, http.StatusOK, RescanResponse{Results: res})
}

// maxInventory bounds the export request: about 850,000 digests.
const maxInventory = 64 << 20

// apiExport streams an export: GET ?since=RFC3339 (default:
// everything), or POST an ExportRequest (since, and the blobs the
// receiving hub holds).
func (h *Hub) apiExport(w http.ResponseWriter, r *http.Request, p *principal) {
	var req hubapi.ExportRequest
	if r.Method == http.MethodPost {
		// An inventory lists every blob of a hub: more than decode's 1 MiB.
		dec := json.NewDecoder(io.LimitReader(r.Body, maxInventory))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, fmt.Errorf("%w: decoding the request: %v", ErrInvalid, err))
			return
		}
		for _, d := range req.Have {
			if !hubapi.ValidDigest(d) {
				writeError(w, fmt.Errorf("%w: have: %q is not a sha256 digest", ErrInvalid, d))
				return
			}
		}
	} else if s := r.URL.Query().Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			writeError(w, fmt.Errorf("%w: since %q: use an RFC 3339 time", ErrInvalid, s))
			return
		}
		req.Since = t
	}
	if err := h.requireSiteAdmin(r.Context(), p.user, "exporting packages"); err != nil {
		writeError(w, err)
		return
	}
	// Export writes nothing to w before every graph is walked, so an
	// error before that is still answered as JSON.
	lw := &lazyHeaderWriter{w: w}
	if _, err := h.Export(r.Context(), lw, ExportOptions{Since: req.Since, Have: req.Have, Actor: p.user}); err != nil {
		if !lw.started {
			writeError(w, err)
			return
		}
		h.logger.Error("hub: export failed while streaming", "err", err)
		panic(http.ErrAbortHandler) // cut the connection: the client sees a truncated export
	}
}

// apiInventory lists the blobs this hub holds, for another hub's export.
func (h *Hub) apiInventory(w http.ResponseWriter, r *http.Request, p *principal) {
	inv, err := h.Inventory(r.Context(), p.user)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, inv)
}

// lazyHeaderWriter sends the tar headers with the first byte.
type lazyHeaderWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyHeaderWriter) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/x-tar")
		l.w.Header().Set("Cache-Control", "no-store")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(b)
}

func (h *Hub) apiImport(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := h.requireSiteAdmin(r.Context(), p.user, "importing packages"); err != nil {
		writeError(w, err)
		return
	}
	res, err := h.Import(r.Context(), r.Body, ImportOptions{Actor: p.user})
	if err != nil {
		if res != nil {
			err = fmt.Errorf("%w (after importing %d package(s))", err, len(res.Packages))
		}
		if errors.Is(err, ErrBadExport) {
			err = fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
