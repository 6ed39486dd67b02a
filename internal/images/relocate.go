package images

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"go.yaml.in/yaml/v3"
)

// ErrUnknownImage is matched (errors.Is) by the error Relocate returns when
// a manifest refers to an image that is not in the Map.
var ErrUnknownImage = errors.New("image is not in the package")

// UnknownImageError lists every image reference Relocate could not map.
type UnknownImageError struct {
	// Refs are the normalized references, sorted.
	Refs []string
}

func (e *UnknownImageError) Error() string {
	if len(e.Refs) == 1 {
		return fmt.Sprintf("image %s is not in the package: add it to images: in skiff.yaml and rebuild", e.Refs[0])
	}
	return fmt.Sprintf("images %s are not in the package: add them to images: in skiff.yaml and rebuild", strings.Join(e.Refs, ", "))
}

// Is reports whether target is ErrUnknownImage.
func (e *UnknownImageError) Is(target error) bool { return target == ErrUnknownImage }

// Map maps normalized source references (docker.io/library/nginx:1.27) to
// their relocated references (127.0.0.1:5000/library/nginx@sha256:...).
type Map map[string]string

// RelocateOptions tunes Relocate.
type RelocateOptions struct {
	// AllowUnknown leaves images that are not in the Map unchanged instead
	// of failing.
	AllowUnknown bool
}

// Relocate rewrites every image reference that Discover would find in
// manifests to its target in m, and returns the documents re-encoded and
// separated by "---". Everything else is preserved, including key order and
// comments; empty documents are dropped.
//
// References found in manifests are normalized before the lookup, so nginx,
// docker.io/nginx:latest and docker.io/library/nginx:latest all match the
// key docker.io/library/nginx:latest; a reference with tag and digest also
// matches a key with the digest alone.
//
// A {registry, repository, tag, digest} mapping is rewritten field by
// field: registry gets the target host (or repository gets host/path when
// there is no registry field), digest gets the target digest when the field
// exists, and tag gets the target tag when the target has one. A mapping
// without a digest field therefore keeps its tag, which must be pushed to
// the target registry as well (see TargetTag).
//
// Unmapped images make Relocate fail with an *UnknownImageError listing all
// of them, unless opts.AllowUnknown is set.
func Relocate(manifests []byte, m Map, opts RelocateOptions) ([]byte, error) {
	norm := make(map[string]string, len(m))
	for k, v := range m {
		nk, err := Normalize(k)
		if err != nil {
			return nil, fmt.Errorf("relocate: image map key: %w", err)
		}
		norm[nk] = v
	}
	docs, err := decode(manifests)
	if err != nil {
		return nil, err
	}
	var unknown []string
	done := map[*yaml.Node]bool{} // nodes reached twice through aliases
	err = walk(docs, func(obj object, occ occurrence) error {
		key := occ.scalar
		if key == nil {
			key = occ.object
		}
		if done[key] {
			return nil
		}
		done[key] = true
		named, err := parse(occ.raw())
		if err != nil {
			return fmt.Errorf("%s: %s: %w", obj, occ.where, err)
		}
		target, ok := lookup(norm, named)
		if !ok {
			unknown = append(unknown, named.String())
			return nil
		}
		if err := rewrite(occ, target); err != nil {
			return fmt.Errorf("%s: %s: %w", obj, occ.where, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(unknown) > 0 && !opts.AllowUnknown {
		slices.Sort(unknown)
		return nil, &UnknownImageError{Refs: slices.Compact(unknown)}
	}
	return encode(docs)
}

func lookup(m map[string]string, named reference.Named) (string, bool) {
	if t, ok := m[named.String()]; ok {
		return t, true
	}
	if c, ok := named.(reference.Canonical); ok {
		if d, err := reference.WithDigest(reference.TrimNamed(named), c.Digest()); err == nil {
			if t, ok := m[d.String()]; ok {
				return t, true
			}
		}
	}
	return "", false
}

func rewrite(occ occurrence, target string) error {
	if occ.scalar != nil {
		setString(occ.scalar, target)
		return nil
	}
	named, err := reference.ParseNormalizedNamed(target)
	if err != nil {
		return fmt.Errorf("relocation target %q: %w", target, err)
	}
	host, path := reference.Domain(named), reference.Path(named)
	if reg := mapGet(occ.object, "registry"); reg != nil && reg.Kind == yaml.ScalarNode {
		setString(reg, host)
		setString(mapGet(occ.object, "repository"), path)
	} else {
		setString(mapGet(occ.object, "repository"), host+"/"+path)
	}
	if t, ok := named.(reference.Tagged); ok {
		if tag := mapGet(occ.object, "tag"); tag != nil && tag.Kind == yaml.ScalarNode {
			setString(tag, t.Tag())
		}
	}
	if c, ok := named.(reference.Canonical); ok {
		if d := mapGet(occ.object, "digest"); d != nil && d.Kind == yaml.ScalarNode {
			setString(d, c.Digest().String())
		}
	}
	return nil
}

func setString(n *yaml.Node, s string) {
	n.Value = s
	n.Tag = "!!str"
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		n.Style = 0
	}
}

func encode(docs []*yaml.Node) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("encode manifests: %v", r)
		}
	}()
	if !slices.ContainsFunc(docs, func(d *yaml.Node) bool { return d != nil }) {
		return []byte{}, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		if d == nil {
			continue
		}
		fixFlowNulls(d, false, map[*yaml.Node]bool{})
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("encode manifests: %w", err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode manifests: %w", err)
	}
	return buf.Bytes(), nil
}

// fixFlowNulls spells out empty nulls inside flow collections: the encoder
// writes the empty null of "{a, b: 1}" as ” (an empty string), which would
// change the value's type.
func fixFlowNulls(n *yaml.Node, inFlow bool, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	inFlow = inFlow || n.Style&yaml.FlowStyle != 0
	if inFlow && n.Kind == yaml.ScalarNode && n.Value == "" && n.Style == 0 && n.ShortTag() == "!!null" {
		n.Value = "null"
	}
	for _, c := range n.Content {
		fixFlowNulls(c, inFlow, seen)
	}
}
