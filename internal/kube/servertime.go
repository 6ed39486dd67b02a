package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// ServerTime asks the API server for its clock: the Date header of a
// request to /version, which has one-second resolution. rtt is the
// round-trip time of the request; the server's clock was read somewhere
// within it.
func (c *Client) ServerTime(ctx context.Context) (server time.Time, rtt time.Duration, err error) {
	hc, err := rest.HTTPClientFor(c.rest)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("creating HTTP client: %w", err)
	}
	u := strings.TrimSuffix(c.rest.Host, "/") + "/version"
	if !strings.Contains(u, "://") {
		u = "https://" + u
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return time.Time{}, 0, err
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("contacting the API server at %s: %w: check that the cluster is reachable", c.rest.Host, err)
	}
	rtt = time.Since(start)
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	date := resp.Header.Get("Date")
	if date == "" {
		return time.Time{}, rtt, fmt.Errorf("the API server at %s sent no Date header", c.rest.Host)
	}
	server, err = http.ParseTime(date)
	if err != nil {
		return time.Time{}, rtt, fmt.Errorf("the API server's Date header %q: %w", date, err)
	}
	return server, rtt, nil
}
