package hubclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/hubapi"
)

// Rescan has the hub run the gates of one package again
// (owner/name:version), or of every published package (all), typically
// after its vulnerability database was updated.
func (c *Client) Rescan(ctx context.Context, owner, name, version string, all bool) ([]hubapi.RescanResult, error) {
	var out hubapi.RescanResponse
	err := c.call(ctx, http.MethodPost, "/api/v1/rescan", hubapi.RescanRequest{Owner: owner, Name: name, Version: version, All: all}, &out)
	return out.Results, err
}

// Export downloads the approved packages approved since since (zero:
// all) into the file out, written atomically; the download is checked
// (every entry against the manifest's sha256) before it is renamed into
// place.
func (c *Client) Export(ctx context.Context, since time.Time, out string) (*hubapi.ExportManifest, error) {
	v := url.Values{}
	if !since.IsZero() {
		v.Set("since", since.UTC().Format(time.RFC3339))
	}
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/export?"+v.Encode(), nil, -1, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	f, err := atomicfile.Create(out, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	if _, err := io.Copy(f, resp.Body); err != nil {
		return nil, fmt.Errorf("downloading the export: %w", err)
	}
	m, err := checkExportFile(f.Name())
	if err != nil {
		return nil, fmt.Errorf("the downloaded export is incomplete (did the hub fail? see its log): %w", err)
	}
	if err := f.Commit(); err != nil {
		return nil, fmt.Errorf("downloading the export: %w", err)
	}
	return m, nil
}

func checkExportFile(p string) (*hubapi.ExportManifest, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return hubapi.ReadExport(f, func(hubapi.ExportEntry, io.Reader) error { return nil })
}

// Import streams an export file to the hub, which publishes every
// package through its gates (they end pending, awaiting this hub's
// approvals, or rejected).
func (c *Client) Import(ctx context.Context, file string) (*hubapi.ImportResult, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, "/api/v1/import", f, st.Size(), "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out hubapi.ImportResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("decoding the hub's answer: %w", err)
	}
	return &out, nil
}

// do sends a request with a streamed body and returns a successful
// response; an error answer is decoded into an *Error.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, size int64, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	if c.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling hub %s: %w (is the hub running, and is the address right?)", c.host, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error hubapi.APIError `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
		return nil, &Error{Status: resp.StatusCode, APIError: hubapi.APIError{Code: hubapi.CodeInternal, Message: fmt.Sprintf("hub %s answered %s", c.host, resp.Status)}}
	}
	return nil, &Error{Status: resp.StatusCode, APIError: e.Error}
}
