package images

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/distribution/reference"
)

var errNotMapping = errors.New("not a mapping: fix the value path or the values")

// SetValues sets chart values that name images to their relocated
// references, before the chart is rendered. iv maps dotted value paths
// (acmesolver.image) to source image references; m maps those images to
// their targets (see Relocate). vals, the values given to the chart, are
// changed in place; defaults, the chart's own values with those of its
// subcharts nested under their names, only tell the shape a value has.
//
// A value that is a mapping, in vals or in defaults, is set field by
// field, as Relocate rewrites a {registry, repository, tag, digest}
// mapping: registry gets the target host when the chart has a registry
// field (repository then gets the path), otherwise repository gets
// host/path; digest gets the target digest ("sha256:..."), or sha gets
// its hex part when the chart spells the digest that way and has no
// digest field; tag gets the source tag, which load pushes next to the
// digest. Any other value, or a path that does not exist yet, gets the
// whole relocated reference as one string.
//
// An image of iv that is not in m fails with an *UnknownImageError.
func SetValues(vals, defaults map[string]any, iv map[string]string, m Map) error {
	norm := make(map[string]string, len(m))
	for k, v := range m {
		nk, err := Normalize(k)
		if err != nil {
			return fmt.Errorf("image values: image map key: %w", err)
		}
		norm[nk] = v
	}
	var unknown []string
	for _, p := range slices.Sorted(maps.Keys(iv)) {
		src, err := parse(iv[p])
		if err != nil {
			return fmt.Errorf("image value %s: %w", p, err)
		}
		target, ok := lookup(norm, src)
		if !ok {
			unknown = append(unknown, src.String())
			continue
		}
		if err := setValue(vals, defaults, strings.Split(p, "."), src, target); err != nil {
			return fmt.Errorf("image value %s: %w", p, err)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return &UnknownImageError{Refs: slices.Compact(unknown)}
	}
	return nil
}

func setValue(vals, defaults map[string]any, keys []string, src reference.Named, target string) error {
	parent := vals
	for i, k := range keys[:len(keys)-1] {
		next := parent[k]
		switch n := next.(type) {
		case map[string]any:
			parent = n
		case nil:
			child := map[string]any{}
			parent[k] = child
			parent = child
		default:
			return fmt.Errorf("%s is %v: %w", strings.Join(keys[:i+1], "."), next, errNotMapping)
		}
	}
	last := keys[len(keys)-1]
	cur, _ := parent[last].(map[string]any)
	def, _ := lookupPath(defaults, keys).(map[string]any)
	if cur == nil && def == nil {
		parent[last] = target
		return nil
	}
	named, err := reference.ParseNormalizedNamed(target)
	if err != nil {
		return fmt.Errorf("relocation target %q: %w", target, err)
	}
	c, ok := named.(reference.Canonical)
	if !ok {
		return fmt.Errorf("relocation target %q has no digest", target)
	}
	has := func(f string) bool {
		_, inCur := cur[f]
		_, inDef := def[f]
		return inCur || inDef
	}
	out := map[string]any{}
	maps.Copy(out, cur)
	host, p := reference.Domain(named), reference.Path(named)
	if has("registry") {
		out["registry"] = host
		out["repository"] = p
	} else {
		out["repository"] = host + "/" + p
	}
	if has("sha") && !has("digest") {
		out["sha"] = c.Digest().Encoded()
	} else {
		out["digest"] = c.Digest().String()
	}
	if t, ok := src.(reference.Tagged); ok {
		out["tag"] = t.Tag()
	}
	parent[last] = out
	return nil
}

// lookupPath returns the value at keys in m, or nil.
func lookupPath(m map[string]any, keys []string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}
