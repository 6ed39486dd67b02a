package images

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ValuePaths finds the chart values that name an image of m, for charts
// whose skiff.yaml entry declares no imageValues: it walks the chart's
// default values (subcharts nested under their names, see SetValues) and
// returns dotted value path → source image reference for
//   - a string that is an image reference of m (image: nginx:1.27), and
//   - a mapping with a repository field that, with its registry, tag and
//     digest fields, spells an image of m
//     ({registry: docker.io, repository: library/nginx, tag: "1.27"}).
//
// The result is what SetValues takes. Keys containing "." cannot be named
// by a dotted path and are skipped.
func ValuePaths(defaults map[string]any, m Map) map[string]string {
	norm := make(map[string]string, len(m))
	for k, v := range m {
		if nk, err := Normalize(k); err == nil {
			norm[nk] = v
		}
	}
	out := map[string]string{}
	var walk func(v any, path []string)
	walk = func(v any, path []string) {
		switch v := v.(type) {
		case string:
			if len(path) > 0 && isImage(norm, v) {
				out[strings.Join(path, ".")] = v
			}
		case map[string]any:
			if ref, ok := mappingRef(v); ok && len(path) > 0 && isImage(norm, ref) {
				out[strings.Join(path, ".")] = ref
				return
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				if k == "" || strings.Contains(k, ".") {
					continue
				}
				walk(v[k], append(slices.Clip(path), k))
			}
		}
	}
	walk(defaults, nil)
	return out
}

// isImage reports whether s parses as an image reference that m relocates.
func isImage(m map[string]string, s string) bool {
	if s == "" || strings.ContainsAny(s, " \n\t{}") {
		return false
	}
	named, err := parse(s)
	if err != nil {
		return false
	}
	_, ok := lookup(m, named)
	return ok
}

// mappingRef spells the image reference of a {registry, repository, tag,
// digest} mapping.
func mappingRef(v map[string]any) (string, bool) {
	repo, ok := v["repository"].(string)
	if !ok || repo == "" {
		return "", false
	}
	if reg, ok := v["registry"].(string); ok && reg != "" {
		repo = strings.TrimSuffix(reg, "/") + "/" + repo
	}
	if t := scalar(v["tag"]); t != "" {
		repo += ":" + t
	}
	if d := scalar(v["digest"]); d != "" {
		repo += "@" + d
	}
	return repo, true
}

func scalar(v any) string {
	switch v := v.(type) {
	case nil, map[string]any, []any:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}
