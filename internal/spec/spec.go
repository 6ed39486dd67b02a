// Package spec loads, defaults and validates skiff.yaml, the package spec
// whose types live in api/v1alpha1.
//
// Loading reads apiVersion and kind first, then decodes strictly: unknown
// fields and wrong types are errors that carry line and column and, for
// likely typos, a suggestion. Defaults are then applied and every rule is
// checked, and all problems are reported together in one
// *ValidationError.
package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

// FileName is the conventional name of the package spec file.
const FileName = "skiff.yaml"

// MaxSize is the largest spec file Load and Parse accept.
const MaxSize = 4 << 20

// Spec is a loaded, defaulted and validated package spec.
type Spec struct {
	v1alpha1.Package
	// Path is the absolute path of skiff.yaml; empty when parsed from
	// memory without a directory.
	Path string `json:"-"`
	// Dir is the absolute directory that relative paths in the spec are
	// resolved against; empty when parsed from memory without one.
	Dir string `json:"-"`

	pos map[string]position
}

// Load reads, decodes, defaults and validates the spec at path. path may
// name skiff.yaml itself or the directory holding it. Every local path in
// the spec must exist under that directory.
func Load(path string) (*Spec, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", path, err)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		abs = filepath.Join(abs, FileName)
	}
	f, err := os.Open(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s: run `skiff init` to create one", ErrNotFound, abs)
	}
	if err != nil {
		return nil, fmt.Errorf("reading package spec: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", abs, err)
	}
	return parse(data, abs, filepath.Dir(abs))
}

// Parse decodes, defaults and validates a spec held in memory. Relative
// paths in it are resolved against dir, and must exist there; when dir is
// empty, existence is not checked.
func Parse(data []byte, dir string) (*Spec, error) {
	path := ""
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", dir, err)
		}
		dir, path = abs, filepath.Join(abs, FileName)
	}
	return parse(data, path, dir)
}

func parse(data []byte, path, dir string) (*Spec, error) {
	s, err := decode(data, path)
	if err != nil {
		return nil, err
	}
	s.Dir = dir
	Default(&s.Package)
	if err := Validate(s); err != nil {
		return nil, err
	}
	return s, nil
}

// decode reads the type meta and strictly decodes data, without defaulting
// or validating.
func decode(data []byte, path string) (*Spec, error) {
	docErr := func(line, col int, sentinel error, format string, args ...any) error {
		return &docError{file: path, line: line, column: col, msg: fmt.Sprintf(format, args...), err: sentinel}
	}
	if len(data) > MaxSize {
		return nil, docErr(0, 0, ErrInvalid, "file is larger than %d bytes: a package spec should be far smaller", MaxSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, docErr(0, 0, ErrInvalid, "file is empty: run `skiff init` to create a package spec")
		}
		return nil, docErr(0, 0, ErrSyntax, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, docErr(0, 0, ErrSyntax, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, docErr(line, 1, ErrInvalid, "file holds more than one YAML document: keep only the package spec")
	}
	if len(doc.Content) == 0 {
		return nil, docErr(0, 0, ErrInvalid, "file is empty: run `skiff init` to create a package spec")
	}
	root := doc.Content[0]
	if err := checkSize(root); err != nil {
		return nil, docErr(0, 0, ErrInvalid, "%v", err)
	}
	root = resolveAlias(root)
	if root.Kind != yaml.MappingNode {
		return nil, docErr(root.Line, root.Column, ErrUnknownAPIVersion,
			"expected a mapping that starts with \"apiVersion: %s\", got %s", v1alpha1.APIVersion, describe(root))
	}
	if err := checkTypeMeta(root, docErr); err != nil {
		return nil, err
	}

	d := newDecoder()
	s := &Spec{Path: path}
	d.decode(root, reflect.ValueOf(&s.Package).Elem(), "")
	if len(d.errs) > 0 {
		return nil, &ValidationError{File: path, Errors: d.errs}
	}
	s.pos = d.pos
	return s, nil
}

// checkTypeMeta checks apiVersion and kind before anything else, so that a
// spec for another version fails with a clear message rather than a list
// of unknown fields.
func checkTypeMeta(root *yaml.Node, docErr func(int, int, error, string, ...any) error) error {
	var apiVersion, kind *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := resolveAlias(root.Content[i])
		switch k.Value {
		case "apiVersion":
			apiVersion = resolveAlias(root.Content[i+1])
		case "kind":
			kind = resolveAlias(root.Content[i+1])
		}
	}
	switch {
	case apiVersion == nil || isNull(apiVersion) || (apiVersion.Kind == yaml.ScalarNode && apiVersion.Value == ""):
		return docErr(root.Line, root.Column, ErrUnknownAPIVersion,
			"apiVersion is missing: add \"apiVersion: %s\" at the top", v1alpha1.APIVersion)
	case apiVersion.Kind != yaml.ScalarNode || apiVersion.Value != v1alpha1.APIVersion:
		hint := "this skiff reads " + v1alpha1.APIVersion + ": set apiVersion to it, or use the skiff release that reads this version"
		if apiVersion.Kind == yaml.ScalarNode && strings.EqualFold(strings.TrimSpace(apiVersion.Value), v1alpha1.APIVersion) {
			hint = fmt.Sprintf("write it exactly as %s", v1alpha1.APIVersion)
		}
		return docErr(apiVersion.Line, apiVersion.Column, ErrUnknownAPIVersion,
			"unknown apiVersion %s: %s", quoteNode(apiVersion), hint)
	case kind == nil || isNull(kind) || (kind.Kind == yaml.ScalarNode && kind.Value == ""):
		return docErr(root.Line, root.Column, ErrUnknownKind,
			"kind is missing: add \"kind: %s\" after apiVersion", v1alpha1.Kind)
	case kind.Kind != yaml.ScalarNode || kind.Value != v1alpha1.Kind:
		return docErr(kind.Line, kind.Column, ErrUnknownKind,
			"unknown kind %s: the only kind in %s is %s", quoteNode(kind), v1alpha1.APIVersion, v1alpha1.Kind)
	}
	return nil
}

func quoteNode(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q", n.Value)
	}
	return describe(n)
}

// Resolve returns rel, a path from the spec, as an absolute path under the
// spec's directory. Absolute paths and specs without a directory return
// rel unchanged (as a native path).
func Resolve(s *Spec, rel string) string {
	p := filepath.FromSlash(rel)
	if s == nil || s.Dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// Marshal encodes a package as block-style YAML, with fields in the order
// of the Go types.
func Marshal(p *v1alpha1.Package) ([]byte, error) {
	j, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding package spec: %w", err)
	}
	// JSON is YAML: decoding it into a node keeps the field order.
	var doc yaml.Node
	if err := yaml.Unmarshal(j, &doc); err != nil {
		return nil, fmt.Errorf("encoding package spec: %w", err)
	}
	blockStyle(&doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encoding package spec: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding package spec: %w", err)
	}
	return b.Bytes(), nil
}

// blockStyle drops the flow and quoting styles that came from JSON; the
// encoder still quotes strings that would otherwise read as another type.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
