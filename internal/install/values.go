package install

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
)

// ValuesFile is one user values file. Its top-level keys name the
// package's charts: `web: {replicas: 3}` sets replicas for chart web.
type ValuesFile struct {
	Name string
	Data []byte
	// Secret marks a file that was decrypted: its values never reach the
	// release record.
	Secret bool
	// Sealed is the encrypted file as given (age), kept in the record so
	// that `skiff get values` shows its values to a holder of the
	// identity.
	Sealed []byte
}

// userValues are the values a user supplied for one chart.
type userValues struct {
	files  [][]byte
	set    []string
	record map[string]any // what the release record keeps (secrets redacted)
}

// Redacted replaces, in release records, every value of an encrypted
// values file and every value given with --set.
const Redacted = "<redacted>"

// valueSources names where the values came from, for the record: "-f
// NAME", "-f NAME (encrypted)" and "--set CHART.PATH" (never the value).
func valueSources(files []ValuesFile, uv map[string]*userValues, d *bundle.Description) []string {
	var out []string
	for _, f := range files {
		if f.Secret {
			out = append(out, "-f "+f.Name+" (encrypted)")
		} else {
			out = append(out, "-f "+f.Name)
		}
	}
	for _, c := range d.Charts {
		u := uv[c.Name]
		if u == nil {
			continue
		}
		for _, kv := range u.set {
			m, err := chart.MergeValues(nil, nil, []string{kv}, nil)
			if err != nil {
				continue
			}
			for _, p := range leafPaths(m, c.Name) {
				out = append(out, "--set "+p)
			}
		}
	}
	return out
}

// leafPaths lists the dotted paths of the leaves of m under prefix.
func leafPaths(m map[string]any, prefix string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if sub, ok := m[k].(map[string]any); ok && len(sub) > 0 {
			out = append(out, leafPaths(sub, prefix+"."+k)...)
			continue
		}
		out = append(out, prefix+"."+k)
	}
	return out
}

// splitValues routes values files and CHART.key=value sets to charts. A
// --set value never appears in an error or in the record: the record
// keeps its key path with the value redacted.
func splitValues(d *bundle.Description, files []ValuesFile, sets []string) (map[string]*userValues, error) {
	out := map[string]*userValues{}
	known := map[string]bool{}
	for _, c := range d.Charts {
		known[c.Name] = true
		out[c.Name] = &userValues{record: map[string]any{}}
	}
	for _, f := range files {
		var top map[string]any
		if err := yaml.Unmarshal(f.Data, &top); err != nil {
			return nil, fmt.Errorf("values file %s: %w", f.Name, err)
		}
		for k, v := range top {
			if !known[k] {
				return nil, fmt.Errorf("values file %s: top-level key %q names no chart of the package (charts: %v): nest values under the chart name", f.Name, k, chartNames(d))
			}
			sec, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("values file %s: %s must be a mapping of that chart's values", f.Name, k)
			}
			b, err := yaml.Marshal(sec)
			if err != nil {
				return nil, err
			}
			out[k].files = append(out[k].files, b)
			if f.Secret {
				sec = redact(sec)
			}
			for rk, rv := range sec {
				out[k].record[rk] = rv
			}
		}
	}
	for _, kv := range sets {
		key, _, _ := strings.Cut(kv, "=")
		comp, rest, ok := cut(kv)
		if !ok || !known[comp] {
			return nil, fmt.Errorf("--set %s=…: use CHART.key=value where CHART is one of %v", key, chartNames(d))
		}
		m, err := chart.MergeValues(nil, nil, []string{rest}, nil)
		if err != nil {
			// The parser's message may quote the value: leave it out.
			return nil, fmt.Errorf("--set %s=…: not a valid CHART.key=value expression (Helm's --set syntax)", key)
		}
		out[comp].set = append(out[comp].set, rest)
		out[comp].record = mergeRecord(out[comp].record, redact(m))
	}
	return out, nil
}

// mergeRecord merges b into a, recursing into maps present in both.
func mergeRecord(a, b map[string]any) map[string]any {
	if a == nil {
		a = map[string]any{}
	}
	for k, v := range b {
		if bv, ok := v.(map[string]any); ok {
			if av, ok := a[k].(map[string]any); ok {
				a[k] = mergeRecord(av, bv)
				continue
			}
		}
		a[k] = v
	}
	return a
}

// splitChartValues returns the package's defaults for c and the user's
// values apart: Helm gets the defaults as the chart's own, so its release
// keeps only what the user gave.
func splitChartValues(c bundle.Chart, u *userValues) (defaults, user map[string]any, err error) {
	if defaults, err = chartValues(c, nil); err != nil {
		return nil, nil, err
	}
	if u == nil {
		return defaults, map[string]any{}, nil
	}
	user, err = chart.MergeValues(u.files, nil, u.set, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("chart %s: values: %w", c.Name, errValuesParse)
	}
	return defaults, user, nil
}

var errValuesParse = errors.New("a values file or --set expression does not parse")

// chartValues merges the package's defaults for c with the user's values.
func chartValues(c bundle.Chart, u *userValues) (map[string]any, error) {
	var base [][]byte
	if len(c.Values) > 0 {
		b, err := yaml.JSONToYAML(c.Values)
		if err != nil {
			return nil, fmt.Errorf("chart %s: package values: %w", c.Name, err)
		}
		base = append(base, b)
	}
	var set []string
	if u != nil {
		base = append(base, u.files...)
		set = u.set
	}
	v, err := chart.MergeValues(base, nil, set, nil)
	if err != nil && len(set) > 0 {
		// The parser's message may quote a --set value: leave it out.
		return nil, fmt.Errorf("chart %s: values: %w", c.Name, errValuesParse)
	}
	return v, err
}

func cut(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '.' {
			return kv[:i], kv[i+1:], true
		}
		if kv[i] == '=' {
			break
		}
	}
	return "", "", false
}

func chartNames(d *bundle.Description) []string {
	n := make([]string, len(d.Charts))
	for i, c := range d.Charts {
		n[i] = c.Name
	}
	return n
}

// redact replaces every leaf of m with [Redacted].
func redact(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out[k] = redact(sub)
			continue
		}
		out[k] = Redacted
	}
	return out
}
