package chart

import (
	"fmt"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// MergeValues merges chart values the way the helm CLI does, later sources
// winning: the values files in order, then inline, then --set style
// key=value expressions (set), then --set-string expressions (setString).
// Maps are merged deeply; any other value replaces the earlier one.
func MergeValues(files [][]byte, inline map[string]any, set, setString []string) (map[string]any, error) {
	out := map[string]any{}
	for i, f := range files {
		var m map[string]any
		if err := yaml.Unmarshal(f, &m); err != nil {
			return nil, fmt.Errorf("values file %d: %w", i+1, err)
		}
		out = MergeMaps(out, m)
	}
	out = MergeMaps(out, copyMap(inline))
	for _, s := range set {
		if err := strvals.ParseInto(s, out); err != nil {
			return nil, fmt.Errorf("set %q: %w", s, err)
		}
	}
	for _, s := range setString {
		if err := strvals.ParseIntoString(s, out); err != nil {
			return nil, fmt.Errorf("set-string %q: %w", s, err)
		}
	}
	return out, nil
}

// MergeMaps returns b deep-merged over a (a new map; neither input is
// changed): maps present in both are merged, any other value of b wins.
func MergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bv, ok := v.(map[string]any); ok {
			if av, ok := out[k].(map[string]any); ok {
				out[k] = MergeMaps(av, bv)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// copyMap deep-copies the maps of m so that later --set expressions never
// write into the caller's map.
func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return copyMap(t)
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = copyValue(e)
		}
		return s
	default:
		return v
	}
}

// Defaults returns the values the chart archive data renders with when
// none are given: its values.yaml, with each subchart's defaults nested
// under the subchart's name (the parent's values winning).
func Defaults(data []byte) (map[string]any, error) {
	ch, err := load(data)
	if err != nil {
		return nil, err
	}
	return defaults(ch), nil
}

func defaults(ch *chartv2.Chart) map[string]any {
	out := copyMap(ch.Values)
	for _, dep := range ch.Dependencies() {
		sub := defaults(dep)
		if own, ok := out[dep.Name()].(map[string]any); ok {
			sub = MergeMaps(sub, own)
		}
		out[dep.Name()] = sub
	}
	return out
}
