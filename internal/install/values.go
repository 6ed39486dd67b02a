package install

import (
	"fmt"

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
}

// userValues are the values a user supplied for one chart.
type userValues struct {
	files  [][]byte
	set    []string
	record map[string]any // what the release record keeps (secrets redacted)
}

// splitValues routes values files and CHART.key=value sets to charts.
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
		comp, rest, ok := cut(kv)
		if !ok || !known[comp] {
			return nil, fmt.Errorf("--set %q: use CHART.key=value where CHART is one of %v", kv, chartNames(d))
		}
		out[comp].set = append(out[comp].set, rest)
		out[comp].record["--set "+rest] = true
	}
	return out, nil
}

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
	return chart.MergeValues(base, nil, set, nil)
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

// redact replaces every leaf of m with "<redacted>".
func redact(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out[k] = redact(sub)
			continue
		}
		out[k] = "<redacted>"
	}
	return out
}
