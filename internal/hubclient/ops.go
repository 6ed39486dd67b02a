package hubclient

import (
	"bytes"
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

// ExportOptions configures [Client.Export].
type ExportOptions struct {
	// Since selects the packages approved at or after it (zero: all).
	Since time.Time
	// Against is the receiving hub's inventory ([Client.Inventory]):
	// the export leaves out the blobs it lists.
	Against *hubapi.Inventory
}

// Export downloads the approved packages approved since o.Since into the
// file out, written atomically; the download is checked (every blob
// against its digest and the manifest) before it is renamed into place.
func (c *Client) Export(ctx context.Context, out string, o ExportOptions) (*hubapi.ExportManifest, error) {
	var resp *http.Response
	var err error
	if o.Against != nil {
		if o.Against.Format != hubapi.InventoryFormat {
			return nil, fmt.Errorf("the inventory has format %q, want %s: write it with `skiff hub inventory` on the receiving hub", o.Against.Format, hubapi.InventoryFormat)
		}
		body, merr := json.Marshal(hubapi.ExportRequest{Since: o.Since, Have: o.Against.Blobs})
		if merr != nil {
			return nil, merr
		}
		resp, err = c.do(ctx, http.MethodPost, "/api/v1/export", bytes.NewReader(body), int64(len(body)), "application/json")
	} else {
		v := url.Values{}
		if !o.Since.IsZero() {
			v.Set("since", o.Since.UTC().Format(time.RFC3339))
		}
		resp, err = c.do(ctx, http.MethodGet, "/api/v1/export?"+v.Encode(), nil, -1, "")
	}
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
	return hubapi.ReadExport(f, nil, nil)
}

// Inventory lists the blobs the hub holds for its published packages,
// for an export on another hub that leaves them out.
func (c *Client) Inventory(ctx context.Context) (*hubapi.Inventory, error) {
	var out hubapi.Inventory
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/inventory", nil, -1, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(&out); err != nil {
		return nil, fmt.Errorf("decoding the hub's inventory: %w", err)
	}
	return &out, nil
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

// ReadInventory reads an inventory file written by `skiff hub inventory`.
func ReadInventory(path string) (*hubapi.Inventory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var inv hubapi.Inventory
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("reading the inventory %s: %w: write it with `skiff hub inventory` on the receiving hub", path, err)
	}
	if inv.Format != hubapi.InventoryFormat {
		return nil, fmt.Errorf("%s has format %q, want %s: write it with `skiff hub inventory` on the receiving hub", path, inv.Format, hubapi.InventoryFormat)
	}
	for _, d := range inv.Blobs {
		if !hubapi.ValidDigest(d) {
			return nil, fmt.Errorf("%s lists %q, not a sha256 digest: write it again with `skiff hub inventory`", path, d)
		}
	}
	return &inv, nil
}
