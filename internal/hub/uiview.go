package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/content"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/sbom"
)

// packageView is the package page's data.
type packageView struct {
	Package     *Package
	Description *bundle.Description
	Gates       []gateView
	// Approvals counts approvals by administrators other than the
	// uploader; Required is how many the hub needs.
	Approvals, Required int
	// CanApprove and CanReject show the review form's buttons; Uploader
	// is set when the viewer is an administrator who uploaded it (and so
	// may not approve it).
	CanApprove, CanReject, Uploader bool
	SBOM                            *sbomSummary
	Scan                            *scanView
}

// gateView is a gate result as shown.
type gateView struct {
	Name, Message string
	Passed        bool
	// Multiline messages (the vulnerability gate's) are shown
	// preformatted.
	Multiline bool
}

// scanView is the vulnerability gate's report.
type scanView struct {
	VulnDetails
	Passed bool
	// More counts blocking findings not shown.
	More int
}

// maxFindingsShown bounds the findings table.
const maxFindingsShown = 200

func (h *Hub) packageView(ctx context.Context, s *uiSession, p *Package) *packageView {
	v := &packageView{Package: p, Description: decodeDescription(p.Description), Required: h.o.Approvals}
	for _, a := range p.Approvals {
		if a.Decision == "approve" && a.User != p.Uploader {
			v.Approvals++
		}
	}
	admin := h.level(ctx, s.principal, p.Owner) >= LevelAdmin
	v.Uploader = admin && s.user == p.Uploader
	v.CanApprove = admin && p.Status == StatusPending && s.user != p.Uploader
	v.CanReject = admin && (p.Status == StatusPending || p.Status == StatusQuarantined)
	for _, g := range p.Gates {
		v.Gates = append(v.Gates, gateView{Name: g.Name, Message: g.Message, Passed: g.Passed, Multiline: strings.Contains(g.Message, "\n")})
		if g.Name == GateVulnerabilities && len(g.Details) > 0 {
			var d VulnDetails
			if json.Unmarshal(g.Details, &d) == nil {
				sv := &scanView{VulnDetails: d, Passed: g.Passed}
				if n := len(sv.Blocked); n > maxFindingsShown {
					sv.Blocked, sv.More = sv.Blocked[:maxFindingsShown], n-maxFindingsShown
				}
				v.Scan = sv
			}
		}
	}
	if v.Description != nil && len(v.Description.SBOMs) > 0 {
		v.SBOM = h.sboms.summary(ctx, h, p, v.Description)
	}
	return v
}

// sbomSummary counts the components of each image SBOM by ecosystem.
type sbomSummary struct {
	// Ecosystems are the table's columns: purl types (deb, apk, npm,
	// pypi, golang...), and "other" for components without a purl.
	Ecosystems []string
	Rows       []sbomRow
	// Error says why the SBOMs could not be read.
	Error string
}

type sbomRow struct {
	Image, Platform string
	Total           int
	// Counts follow sbomSummary.Ecosystems.
	Counts []int
}

// sbomCache remembers summaries by package root digest: a root's
// content never changes.
type sbomCache struct {
	mu sync.Mutex
	m  map[string]*sbomSummary
}

// maxUISBOM bounds one SBOM read for the summary.
const maxUISBOM = 64 << 20

func (c *sbomCache) summary(ctx context.Context, h *Hub, p *Package, d *bundle.Description) *sbomSummary {
	c.mu.Lock()
	s, ok := c.m[p.Digest]
	c.mu.Unlock()
	if ok {
		return s
	}
	s, err := readSBOMSummary(ctx, h, p, d)
	if err != nil {
		return &sbomSummary{Error: err.Error()} // not cached: may be transient
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 1000 {
		c.m = map[string]*sbomSummary{}
	}
	c.m[p.Digest] = s
	c.mu.Unlock()
	return s
}

// readSBOMSummary reads the image SBOM layers d lists from the package's
// repository in the hub's storage (each checked against its digest).
func readSBOMSummary(ctx context.Context, h *Hub, p *Package, d *bundle.Description) (*sbomSummary, error) {
	repo, err := h.repository(ctx, p.Repository())
	if err != nil {
		return nil, err
	}
	eco := map[string]bool{}
	var rows []sbomRow
	counts := []map[string]int{}
	for _, e := range d.SBOMs {
		if e.Image == sbom.PackageImage {
			continue
		}
		data, err := fetchSBOM(ctx, repo, e.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading the SBOM of %s (%s): %w", e.Image, e.Platform, err)
		}
		bom, err := sbom.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("the SBOM of %s (%s): %w", e.Image, e.Platform, err)
		}
		n := map[string]int{}
		for _, comp := range bom.Components {
			k := "other"
			if pu, err := sbom.ParsePURL(comp.PURL); err == nil && pu.Type != "" {
				k = pu.Type
			}
			n[k]++
			eco[k] = true
		}
		rows = append(rows, sbomRow{Image: e.Image, Platform: e.Platform, Total: len(bom.Components)})
		counts = append(counts, n)
	}
	s := &sbomSummary{}
	for k := range eco {
		s.Ecosystems = append(s.Ecosystems, k)
	}
	slices.SortFunc(s.Ecosystems, func(a, b string) int {
		// "other" last.
		return cmp.Or(cmp.Compare(boolRank(a == "other"), boolRank(b == "other")), cmp.Compare(a, b))
	})
	for i := range rows {
		for _, k := range s.Ecosystems {
			rows[i].Counts = append(rows[i].Counts, counts[i][k])
		}
	}
	s.Rows = rows
	return s, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func fetchSBOM(ctx context.Context, blobs storedRepo, d digest.Digest) ([]byte, error) {
	desc, err := blobs.Stat(ctx, d)
	if err != nil {
		return nil, err
	}
	if desc.Size > maxUISBOM {
		return nil, fmt.Errorf("%d bytes is more than the UI reads (%d)", desc.Size, maxUISBOM)
	}
	desc.Digest = d
	rc, err := blobs.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return content.ReadAll(rc, desc)
}
