package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite docs/skiff.schema.json from the Go types")

const schemaFile = "../../docs/skiff.schema.json"

func TestJSONSchemaFileInSync(t *testing.T) {
	got := JSONSchema()
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v: run go test ./internal/spec -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: run go test ./internal/spec -update", schemaFile)
	}
}

// TestSchemaDocsComplete checks that every field and type of api/v1alpha1
// is described, and that no description is stale.
func TestSchemaDocsComplete(t *testing.T) {
	fields, types := map[string]bool{}, map[string]bool{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || types[rt.Name()] {
			return
		}
		types[rt.Name()] = true
		for _, f := range structFields(rt) {
			fields[rt.Name()+"."+f.name] = true
			walk(rt.Field(f.index).Type)
		}
	}
	walk(reflect.TypeOf(v1alpha1.Package{}))
	for k := range fields {
		if fieldDocs[k] == "" {
			t.Errorf("fieldDocs has no entry for %s", k)
		}
	}
	for k := range fieldDocs {
		if !fields[k] {
			t.Errorf("fieldDocs entry %s names no field", k)
		}
	}
	for k := range fieldSchema {
		if !fields[k] {
			t.Errorf("fieldSchema entry %s names no field", k)
		}
	}
	for k := range types {
		if typeDocs[k] == "" {
			t.Errorf("typeDocs has no entry for %s", k)
		}
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("compiling schema: %v", err)
	}
	return s
}

// yamlInstance turns a YAML document into a JSON Schema instance.
func yamlInstance(t *testing.T, data []byte) any {
	t.Helper()
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	norm, err := jsonCompatible(raw)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(norm)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestSchemaAcceptsValid(t *testing.T) {
	sch := compileSchema(t)
	files, _ := filepath.Glob(filepath.Join(testdata, "valid-*.yaml"))
	inputs := map[string][]byte{"scaffold": Scaffold("demo")}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[filepath.Base(f)] = data
	}
	for name, data := range inputs {
		if err := sch.Validate(yamlInstance(t, data)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSchemaRejectsInvalid checks the rules the schema can express.
func TestSchemaRejectsInvalid(t *testing.T) {
	sch := compileSchema(t)
	for _, name := range []string{
		"invalid-apiversion.yaml",
		"invalid-kind.yaml",
		"invalid-unknown-field.yaml",
		"invalid-misplaced-field.yaml",
		"invalid-unknown-far.yaml",
		"invalid-type-platforms.yaml",
		"invalid-type-port.yaml",
		"invalid-type-struct.yaml",
		"invalid-metadata.yaml",
		"invalid-missing-metadata.yaml",
		"invalid-charts.yaml",
		"invalid-networkpolicy.yaml",
		"invalid-no-apiversion.yaml",
	} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(testdata, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(yamlInstance(t, data)); err == nil {
				t.Errorf("schema accepts %s", name)
			} else if strings.Contains(err.Error(), "panic") {
				t.Error(err)
			}
		})
	}
}
