package support

import (
	"bytes"
	"regexp"

	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// Redacted replaces every removed value.
const Redacted = "REDACTED"

// sensitive matches the keys whose values are removed: names ending in
// password, token, secret, key and the like (apiKey, client_secret,
// accessToken, tls.key), not secretName or secretKeyRef.
var sensitive = regexp.MustCompile(`(?i)(pass|passwd|password|passphrase|token|secret|key|credential|credentials|auth)$`)

// Sensitive reports whether a key name suggests a secret value.
func Sensitive(key string) bool { return sensitive.MatchString(key) }

// Redact returns a copy of r safe to hand out: every value under a key
// named like a secret (password, token, secret, key, ...) is replaced by
// REDACTED, in the values and in the recorded manifests, and the data of
// recorded Secrets is replaced too.
func Redact(r *release.Record) *release.Record {
	c := r.Clone()
	c.SealedValues = nil // encrypted, but it has no business leaving the site
	if m, ok := RedactValue(c.Values).(map[string]any); ok {
		c.Values = m
	}
	for i := range c.Components {
		if c.Components[i].Manifest != "" {
			c.Components[i].Manifest = redactManifest(c.Components[i].Manifest)
		}
	}
	return c
}

// RedactValue returns a copy of v (JSON-like maps and slices) with the
// values of sensitive keys replaced, including the value of an
// {name: SENSITIVE, value: ...} pair (container environment variables).
func RedactValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		name, _ := v["name"].(string)
		for k, e := range v {
			switch {
			case Sensitive(k):
				out[k] = Redacted
			case k == "value" && Sensitive(name):
				out[k] = Redacted
			default:
				out[k] = RedactValue(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = RedactValue(e)
		}
		return out
	}
	return v
}

// redactManifest redacts a YAML stream: Secrets lose their data, every
// object its sensitive values (metadata is kept). A manifest that does
// not parse is dropped whole.
func redactManifest(y string) string {
	objs, err := kube.ParseObjects([]byte(y))
	if err != nil {
		return "# " + Redacted + ": the manifest could not be parsed for redaction\n"
	}
	var out bytes.Buffer
	for _, o := range objs {
		m := o.Object
		red := map[string]any{}
		for k, v := range m {
			switch {
			case k == "apiVersion" || k == "kind" || k == "metadata":
				red[k] = v
			case o.GetKind() == "Secret" && (k == "data" || k == "stringData"):
				red[k] = redactAll(v)
			default:
				red[k] = RedactValue(v)
			}
		}
		b, err := yaml.Marshal(red)
		if err != nil {
			continue
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.String()
}

// redactAll keeps the keys of a map and replaces every value.
func redactAll(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return Redacted
	}
	out := make(map[string]any, len(m))
	for k := range m {
		out[k] = Redacted
	}
	return out
}
