package sbom

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// CycloneDX spec version and format of the documents written.
const (
	SpecVersion = "1.5"
	BOMFormat   = "CycloneDX"
)

// Property names Skiff records on components and on the document.
const (
	PropLocation     = "skiff:location"
	PropLayer        = "skiff:layer"
	PropPlatform     = "skiff:platform"
	PropImage        = "skiff:image"
	PropSkippedLayer = "skiff:skipped-layer"
	PropDistro       = "skiff:distro"
)

// BOM is the subset of a CycloneDX 1.5 JSON document Skiff writes and
// reads.
type BOM struct {
	BOMFormat    string      `json:"bomFormat"`
	SpecVersion  string      `json:"specVersion"`
	SerialNumber string      `json:"serialNumber,omitempty"`
	Version      int         `json:"version"`
	Metadata     *Metadata   `json:"metadata,omitempty"`
	Components   []Component `json:"components"`
}

// Metadata describes the subject of a BOM.
type Metadata struct {
	Tools      *Tools     `json:"tools,omitempty"`
	Component  *Component `json:"component,omitempty"`
	Properties []Property `json:"properties,omitempty"`
}

// Tools names the generator.
type Tools struct {
	Components []Component `json:"components,omitempty"`
}

// Component is a CycloneDX component.
type Component struct {
	Type       string     `json:"type"`
	BOMRef     string     `json:"bom-ref,omitempty"`
	Name       string     `json:"name"`
	Version    string     `json:"version,omitempty"`
	PURL       string     `json:"purl,omitempty"`
	Licenses   []License  `json:"licenses,omitempty"`
	Hashes     []Hash     `json:"hashes,omitempty"`
	Properties []Property `json:"properties,omitempty"`
}

// License is a CycloneDX license choice; Skiff records names as found.
type License struct {
	License *LicenseName `json:"license,omitempty"`
}

// LicenseName is a license named by its id or name.
type LicenseName struct {
	Name string `json:"name"`
}

// Hash is a component hash.
type Hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

// Property is a name/value pair.
type Property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Property returns the value of the first property called name.
func (c Component) Property(name string) string {
	for _, p := range c.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// Parse decodes a CycloneDX JSON document and checks it is one.
func Parse(data []byte) (*BOM, error) {
	var b BOM
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotSBOM, err)
	}
	if b.BOMFormat != BOMFormat {
		return nil, fmt.Errorf("%w: bomFormat is %q, want %q", ErrNotSBOM, b.BOMFormat, BOMFormat)
	}
	return &b, nil
}

// marshal sorts the components and encodes the document (indented, so
// it diffs well; stable for the same input).
func (b *BOM) marshal() ([]byte, error) {
	sortComponents(b.Components)
	if b.Components == nil {
		b.Components = []Component{}
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding SBOM: %w", err)
	}
	return append(out, '\n'), nil
}

func sortComponents(cs []Component) {
	for i := range cs {
		sort.SliceStable(cs[i].Properties, func(a, b int) bool {
			pa, pb := cs[i].Properties[a], cs[i].Properties[b]
			return cmp.Or(cmp.Compare(pa.Name, pb.Name), cmp.Compare(pa.Value, pb.Value)) < 0
		})
	}
	slices.SortStableFunc(cs, func(a, b Component) int {
		return cmp.Or(cmp.Compare(a.PURL, b.PURL), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version),
			cmp.Compare(a.Property(PropLocation), b.Property(PropLocation)))
	})
}

// serial derives a stable urn:uuid from seed (the image digest), shaped
// as a version 5 (name-based) UUID.
func serial(seed string) string {
	h := sha256.Sum256([]byte("skiff-sbom:" + seed))
	u := h[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return "urn:uuid:" + x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// PURL is a parsed package URL.
type PURL struct {
	Type       string
	Namespace  string
	Name       string
	Version    string
	Qualifiers map[string]string
}

// String formats p canonically (qualifiers sorted by key).
func (p PURL) String() string {
	var b strings.Builder
	b.WriteString("pkg:")
	b.WriteString(p.Type)
	b.WriteByte('/')
	if p.Namespace != "" {
		for _, seg := range strings.Split(p.Namespace, "/") {
			b.WriteString(escape(seg))
			b.WriteByte('/')
		}
	}
	b.WriteString(escape(p.Name))
	if p.Version != "" {
		b.WriteByte('@')
		b.WriteString(escape(p.Version))
	}
	keys := make([]string, 0, len(p.Qualifiers))
	for k, v := range p.Qualifiers {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(escape(p.Qualifiers[k]))
	}
	return b.String()
}

// escape percent-encodes everything but unreserved characters.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// ParsePURL parses a package URL (pkg:type/namespace/name@version?q=v).
func ParsePURL(s string) (PURL, error) {
	rest, ok := strings.CutPrefix(s, "pkg:")
	if !ok {
		return PURL{}, fmt.Errorf("package URL %q does not start with pkg:", s)
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	var p PURL
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		q, err := url.ParseQuery(rest[i+1:])
		if err != nil {
			return PURL{}, fmt.Errorf("package URL %q: qualifiers: %w", s, err)
		}
		p.Qualifiers = map[string]string{}
		for k, v := range q {
			p.Qualifiers[strings.ToLower(k)] = v[0]
		}
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		v, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return PURL{}, fmt.Errorf("package URL %q: version: %w", s, err)
		}
		p.Version = v
		rest = rest[:i]
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) < 2 || parts[0] == "" {
		return PURL{}, fmt.Errorf("package URL %q: want pkg:TYPE/NAME", s)
	}
	p.Type = strings.ToLower(parts[0])
	for i, seg := range parts[1:] {
		u, err := url.PathUnescape(seg)
		if err != nil {
			return PURL{}, fmt.Errorf("package URL %q: %w", s, err)
		}
		parts[i+1] = u
	}
	p.Name = parts[len(parts)-1]
	p.Namespace = strings.Join(parts[1:len(parts)-1], "/")
	if p.Name == "" {
		return PURL{}, fmt.Errorf("package URL %q has no name", s)
	}
	return p, nil
}
