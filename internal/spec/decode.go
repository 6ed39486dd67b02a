package spec

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the number of YAML nodes a spec may expand to, counting
// every alias expansion, so that alias bombs fail fast.
const maxNodes = 200_000

// maxDepth bounds nesting, again counting alias expansion.
const maxDepth = 200

// position is a 1-based line and column in skiff.yaml.
type position struct{ line, column int }

// decoder strictly decodes a yaml.Node tree into Go values using their json
// tags. It collects every problem instead of stopping at the first, and
// records the position of every field path it sees, for later validation
// messages.
type decoder struct {
	errs []FieldError
	pos  map[string]position
}

func newDecoder() *decoder { return &decoder{pos: map[string]position{}} }

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	fe := FieldError{Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		fe.Line, fe.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, fe)
}

func (d *decoder) mark(n *yaml.Node, path string) {
	if _, ok := d.pos[path]; !ok && n != nil {
		d.pos[path] = position{n.Line, n.Column}
	}
}

// resolveAlias follows alias nodes to the node they name. checkSize has
// already rejected cycles.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// checkSize returns an error when n, with aliases expanded, is larger than
// maxNodes, deeper than maxDepth or refers to itself.
func checkSize(n *yaml.Node) error {
	sizes := map[*yaml.Node]int{}
	active := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node, depth int) (int, error)
	walk = func(n *yaml.Node, depth int) (int, error) {
		if n == nil {
			return 0, nil
		}
		if depth > maxDepth {
			return 0, fmt.Errorf("nesting is deeper than %d levels", maxDepth)
		}
		if s, ok := sizes[n]; ok {
			return s, nil
		}
		if active[n] {
			return 0, fmt.Errorf("line %d:%d: alias refers to a node that contains it", n.Line, n.Column)
		}
		active[n] = true
		defer delete(active, n)
		total := 1
		children := n.Content
		if n.Kind == yaml.AliasNode {
			children = []*yaml.Node{n.Alias}
		}
		for _, c := range children {
			s, err := walk(c, depth+1)
			if err != nil {
				return 0, err
			}
			total += s
			if total > maxNodes {
				return 0, fmt.Errorf("document expands to more than %d nodes (too many aliases?)", maxNodes)
			}
		}
		sizes[n] = total
		return total, nil
	}
	_, err := walk(n, 0)
	return err
}

// field is one json-tagged struct field.
type field struct {
	name  string
	index int
}

func structFields(t reflect.Type) []field {
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs = append(fs, field{name: name, index: i})
	}
	return fs
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for type errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return fmt.Sprintf("the number %s", n.Value)
		case "!!bool":
			return fmt.Sprintf("the boolean %s", n.Value)
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "an unsupported YAML node"
}

// expect names what a Go type wants, for type errors.
func expect(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int32, reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(expect(t.Elem()), "a "), "an ") + "s"
	case reflect.Map:
		return "a mapping"
	case reflect.Struct:
		return "a mapping"
	case reflect.Pointer:
		return expect(t.Elem())
	}
	return t.String()
}

var anyMapType = reflect.TypeOf(map[string]any(nil))

// decode decodes n into v (which must be settable).
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolveAlias(n)
	if n == nil {
		return
	}
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	t := v.Type()
	switch {
	case t == anyMapType:
		d.decodeValues(n, v, path)
		return
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			hint := ""
			if n.Kind == yaml.ScalarNode {
				hint = fmt.Sprintf(": write it as a list, like [%s] or one \"- item\" per line", n.Value)
			}
			d.errorf(n, path, "expected %s, got %s%s", expect(t), describe(n), hint)
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.mark(c, p)
			d.decode(c, s.Index(i), p)
		}
		v.Set(s)
	case reflect.Map:
		d.decodeStringMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected %s, got %s", expect(t), describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int32:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || i < math.MinInt32 || i > math.MaxInt32 {
			d.errorf(n, path, "expected %s, got %s", expect(t), describe(n))
			return
		}
		v.SetInt(i)
	default:
		d.errorf(n, path, "cannot decode into %s", t)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of fields, got %s", describe(n))
		return
	}
	fields := structFields(t)
	byName := make(map[string]int, len(fields))
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		byName[f.name] = f.index
		names = append(names, f.name)
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "field names must be plain strings, got %s", describe(k))
			continue
		}
		key := k.Value
		fp := joinPath(path, key)
		if key == "<<" {
			d.errorf(k, path, "merge keys (<<) are not supported in skiff.yaml: write the fields out")
			continue
		}
		idx, ok := byName[key]
		if !ok {
			d.errorf(k, fp, "unknown field %q%s", key, suggestion(key, names, t))
			continue
		}
		if prev, dup := seen[key]; dup {
			d.errorf(k, fp, "field %q is set twice (first at line %d): keep one", key, prev.Line)
			continue
		}
		seen[key] = k
		d.mark(val, fp)
		d.decode(val, v.Field(idx), fp)
	}
}

// decodeStringMap decodes a mapping of string keys to scalar values into a
// map[string]string.
func (d *decoder) decodeStringMap(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if t.Key().Kind() != reflect.String || t.Elem().Kind() != reflect.String {
		d.errorf(n, path, "cannot decode into %s", t)
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of strings, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Value == "<<" {
			d.errorf(k, path, "keys must be plain strings, got %s", describe(k))
			continue
		}
		kp := joinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, kp, "key %q is set twice (first at line %d): keep one", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		if val.Kind != yaml.ScalarNode {
			d.errorf(val, kp, "expected a string, got %s", describe(val))
			continue
		}
		s := val.Value
		if isNull(val) {
			s = ""
		}
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), reflect.ValueOf(s).Convert(t.Elem()))
	}
	v.Set(m)
}

// decodeValues decodes free-form Helm values into JSON-compatible Go
// values: map[string]any, []any, string, bool, int, int64, uint64, float64
// and nil.
func (d *decoder) decodeValues(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of values, got %s", describe(n))
		return
	}
	var raw any
	if err := n.Decode(&raw); err != nil {
		d.errorf(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	norm, err := jsonCompatible(raw)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	m, _ := norm.(map[string]any)
	v.Set(reflect.ValueOf(m))
}

// jsonCompatible converts YAML-decoded values to ones encoding/json can
// marshal: non-string keys become strings (as sigs.k8s.io/yaml does) and
// NaN or infinite numbers are rejected.
func jsonCompatible(x any) (any, error) {
	switch x := x.(type) {
	case map[string]any:
		for k, v := range x {
			nv, err := jsonCompatible(v)
			if err != nil {
				return nil, err
			}
			x[k] = nv
		}
		return x, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, v := range x {
			var ks string
			switch k := k.(type) {
			case string:
				ks = k
			case bool:
				ks = strconv.FormatBool(k)
			case int:
				ks = strconv.Itoa(k)
			case int64:
				ks = strconv.FormatInt(k, 10)
			case uint64:
				ks = strconv.FormatUint(k, 10)
			case float64:
				ks = strconv.FormatFloat(k, 'g', -1, 64)
			default:
				return nil, fmt.Errorf("value keys must be strings, numbers or booleans, got %T: quote the key", k)
			}
			if _, dup := out[ks]; dup {
				return nil, fmt.Errorf("key %q appears twice once converted to a string: rename one", ks)
			}
			nv, err := jsonCompatible(v)
			if err != nil {
				return nil, err
			}
			out[ks] = nv
		}
		return out, nil
	case []any:
		for i, v := range x {
			nv, err := jsonCompatible(v)
			if err != nil {
				return nil, err
			}
			x[i] = nv
		}
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("values may not hold .nan or .inf: quote it to pass a string")
		}
		return x, nil
	case nil, string, bool, int, int64, uint64:
		return x, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", x)
}
