package kube

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ObjectRef identifies one object in the cluster. Namespace is empty for
// cluster-scoped objects.
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RefOf returns the reference of obj.
func RefOf(obj *unstructured.Unstructured) ObjectRef {
	gvk := obj.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// GroupVersionKind returns the ref's group, version and kind.
func (r ObjectRef) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// String formats the ref as "Kind.group namespace/name" ("Deployment.apps
// demo/web", "Namespace demo").
func (r ObjectRef) String() string {
	var b strings.Builder
	b.WriteString(r.Kind)
	if r.Group != "" {
		b.WriteString(".")
		b.WriteString(r.Group)
	}
	b.WriteString(" ")
	if r.Namespace != "" {
		b.WriteString(r.Namespace)
		b.WriteString("/")
	}
	b.WriteString(r.Name)
	return b.String()
}

// sameObject reports whether a and b name the same object, whatever the
// API version.
func sameObject(a, b ObjectRef) bool {
	return a.Group == b.Group && a.Kind == b.Kind && a.Namespace == b.Namespace && a.Name == b.Name
}

// kubectlName is the ref in kubectl's "kind.group/name" form.
func (r ObjectRef) kubectlName() string {
	s := strings.ToLower(r.Kind)
	if r.Group != "" {
		s += "." + r.Group
	}
	return s + "/" + r.Name
}

// ParseObjects decodes a multi-document YAML (or JSON) stream into objects.
// Empty documents are skipped and List kinds (v1 List, ConfigMapList, ...)
// are flattened into their items. Every object must have apiVersion, kind
// and metadata.name. Errors name the document, counting from 1.
func ParseObjects(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML document %d: %w", doc, err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", doc, err)
		}
		js = bytes.TrimSpace(js)
		if len(js) == 0 || bytes.Equal(js, []byte("null")) {
			continue
		}
		if js[0] != '{' {
			return nil, fmt.Errorf("YAML document %d: not a Kubernetes object (want a mapping with apiVersion and kind)", doc)
		}
		var m map[string]any
		if err := utiljson.Unmarshal(js, &m); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", doc, err)
		}
		obj := &unstructured.Unstructured{Object: m}
		if err := checkType(obj); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", doc, err)
		}
		if items, ok := obj.Object["items"].([]any); ok && strings.HasSuffix(obj.GetKind(), "List") {
			for i, it := range items {
				m, ok := it.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("YAML document %d, list item %d: not a Kubernetes object", doc, i+1)
				}
				item := &unstructured.Unstructured{Object: m}
				if err := checkObject(item); err != nil {
					return nil, fmt.Errorf("YAML document %d, list item %d: %w", doc, i+1, err)
				}
				objs = append(objs, item)
			}
			continue
		}
		if err := checkObject(obj); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", doc, err)
		}
		objs = append(objs, obj)
	}
}

// checkType checks apiVersion and kind; both must be strings.
func checkType(obj *unstructured.Unstructured) error {
	kind, ok := obj.Object["kind"].(string)
	if !ok || kind == "" {
		return errors.New("object has no kind")
	}
	if v, ok := obj.Object["apiVersion"].(string); !ok || v == "" {
		return fmt.Errorf("%s has no apiVersion", kind)
	}
	if _, err := schema.ParseGroupVersion(obj.GetAPIVersion()); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	return nil
}

// checkObject checks what apply needs: type, a string name, and a
// metadata mapping.
func checkObject(obj *unstructured.Unstructured) error {
	if err := checkType(obj); err != nil {
		return err
	}
	md, ok := obj.Object["metadata"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s has no metadata", obj.GetKind())
	}
	if name, ok := md["name"].(string); !ok || name == "" {
		return fmt.Errorf("%s has no metadata.name (generateName is not supported: skiff must find the object again)", obj.GetKind())
	}
	if ns, ok := md["namespace"]; ok {
		if _, ok := ns.(string); !ok {
			return fmt.Errorf("%s %s: metadata.namespace is not a string", obj.GetKind(), obj.GetName())
		}
	}
	return nil
}
