package convert

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseLegacy reads a SINA-era package.yaml. Its exact schema is not
// documented, so it accepts the plausible shapes: includes.files and
// includes.containers as mappings or as lists of one-key mappings, and
// task lists whose items are keyed by plugin name.
func parseLegacy(data []byte) (*source, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("file is empty")
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: expected a mapping at the top", doc.Line)
	}
	s := &source{sections: map[string][]stmt{}}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		key := strings.ToLower(k.Value)
		switch key {
		case "includes":
			if v.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("line %d: includes must be a mapping", v.Line)
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				ik, iv := v.Content[j], v.Content[j+1]
				entries, err := entries(iv)
				if err != nil {
					return nil, err
				}
				switch strings.ToLower(ik.Value) {
				case "files":
					for _, e := range entries {
						s.files = append(s.files, kv{e.id, strings.Join(e.vals, ","), e.line})
					}
				case "containers":
					for _, e := range entries {
						s.containers = append(s.containers, container{e.id, e.vals, e.line})
					}
				default:
					s.meta = append(s.meta, kv{"includes." + ik.Value, "", ik.Line})
				}
			}
		case "installation", "install", "update", "delete":
			tasks := v
			if v.Kind == yaml.MappingNode {
				tasks = lookup(v, "tasks")
			}
			sts, err := taskList(tasks, 0)
			if err != nil {
				return nil, err
			}
			if key == "installation" {
				key = "install"
			}
			s.sections[key] = append(s.sections[key], sts...)
		default:
			val := v.Value
			if v.Kind != yaml.ScalarNode {
				val = ""
			}
			s.meta = append(s.meta, kv{key, val, k.Line})
		}
	}
	return s, nil
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			return m.Content[i+1]
		}
	}
	return nil
}

type entry struct {
	id   string
	vals []string
	line int
}

// entries reads a mapping of id to value(s), or a list of one-key
// mappings, or a list of plain strings (whose id is the string).
func entries(n *yaml.Node) ([]entry, error) {
	var out []entry
	add := func(k, v *yaml.Node) error {
		vals, err := scalars(v)
		if err != nil {
			return err
		}
		out = append(out, entry{k.Value, vals, k.Line})
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		if isImageMapping(n) { // one container written as {registry, image, tag}
			return []entry{imageEntry(n)}, nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := add(n.Content[i], n.Content[i+1]); err != nil {
				return nil, err
			}
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			switch item.Kind {
			case yaml.ScalarNode:
				out = append(out, entry{item.Value, []string{item.Value}, item.Line})
			case yaml.MappingNode:
				if isImageMapping(item) { // - {registry: r, image: i, tag: t}
					out = append(out, imageEntry(item))
					continue
				}
				for i := 0; i+1 < len(item.Content); i += 2 {
					if err := add(item.Content[i], item.Content[i+1]); err != nil {
						return nil, err
					}
				}
			default:
				return nil, fmt.Errorf("line %d: unexpected list item", item.Line)
			}
		}
	case yaml.ScalarNode:
		if n.ShortTag() != "!!null" {
			return nil, fmt.Errorf("line %d: expected a mapping or a list", n.Line)
		}
	default:
		return nil, fmt.Errorf("line %d: expected a mapping or a list", n.Line)
	}
	return out, nil
}

// imageKeys are the fields of a container written as a mapping.
var imageKeys = map[string]bool{"registry": true, "image": true, "tag": true, "name": true, "digest": true}

// isImageMapping reports whether n is one container written as a mapping
// ({registry, image, tag}, optionally name), rather than a mapping of
// container ids.
func isImageMapping(n *yaml.Node) bool {
	if n.Kind != yaml.MappingNode || lookup(n, "image") == nil {
		return false
	}
	for i := 0; i < len(n.Content); i += 2 {
		if !imageKeys[strings.ToLower(n.Content[i].Value)] || n.Content[i+1].Kind != yaml.ScalarNode {
			return false
		}
	}
	return true
}

// imageEntry is the entry of a container written as a mapping: its id is
// its name, else its image.
func imageEntry(n *yaml.Node) entry {
	vals, _ := scalars(n)
	id := ""
	if v := lookup(n, "name"); v != nil {
		id = v.Value
	}
	if id == "" {
		id = lookup(n, "image").Value
	}
	return entry{id, vals, n.Line}
}

// scalars reads a scalar, a list of scalars, or a mapping of scalars
// (registry, image, tag, in that order when those keys are present).
func scalars(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: expected a string", c.Line)
			}
			out = append(out, c.Value)
		}
		return out, nil
	case yaml.MappingNode:
		// Always [registry, image, tag]: a missing registry or tag is ""
		// (and a digest stands in for the tag).
		out := make([]string, 3)
		found := false
		for i, k := range []string{"registry", "image", "tag"} {
			if v := lookup(n, k); v != nil && v.Kind == yaml.ScalarNode {
				out[i], found = v.Value, true
			}
		}
		if d := lookup(n, "digest"); d != nil && d.Kind == yaml.ScalarNode && d.Value != "" {
			out[2], found = d.Value, true
		}
		if !found || out[1] == "" {
			return nil, fmt.Errorf("line %d: expected registry, image and tag", n.Line)
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: expected a string or a list", n.Line)
}

// taskList reads a list of tasks, each a one-key mapping from the plugin
// name to its arguments.
func taskList(n *yaml.Node, depth int) ([]stmt, error) {
	if n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		return nil, nil
	}
	if depth > maxNesting {
		return nil, fmt.Errorf("line %d: tasks nested more than %d deep", n.Line, maxNesting)
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: tasks must be a list", n.Line)
	}
	var out []stmt
	for _, item := range n.Content {
		if item.Kind != yaml.MappingNode || len(item.Content) != 2 {
			return nil, fmt.Errorf("line %d: a task is a mapping with one plugin name", item.Line)
		}
		name, body := item.Content[0], item.Content[1]
		st := stmt{plugin: name.Value, line: name.Line}
		if body.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(body.Content); i += 2 {
				k, v := body.Content[i], body.Content[i+1]
				switch strings.ToLower(k.Value) {
				case "then", "else", "tasks":
					sub := v
					if v.Kind == yaml.MappingNode {
						sub = lookup(v, "tasks")
					}
					sts, err := taskList(sub, depth+1)
					if err != nil {
						return nil, err
					}
					if strings.EqualFold(k.Value, "else") {
						st.orElse = sts
					} else {
						st.body = sts
					}
					continue
				}
				st.args = append(st.args, kv{k.Value, flatten(v), k.Line})
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// flatten renders a YAML value as KOSI's string form: scalars as they
// are, lists as "[a,b]".
func flatten(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			parts = append(parts, flatten(c))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case yaml.MappingNode:
		var parts []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			parts = append(parts, n.Content[i].Value+"="+flatten(n.Content[i+1]))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ",") + "}"
	case yaml.AliasNode:
		return strconv.Quote("*" + n.Value)
	}
	return ""
}
