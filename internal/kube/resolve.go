package kube

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ResolveRef turns a user's "kind/name" or "namespace/kind/name" (kind as
// singular, plural or short kind name, any case; "deployment.apps" style
// group suffixes allowed) into an ObjectRef, using the API server's
// discovery. ns is the namespace of namespaced objects given without one.
func (c *Client) ResolveRef(ctx context.Context, s, ns string) (ObjectRef, error) {
	parts := strings.Split(s, "/")
	var kind, name string
	switch len(parts) {
	case 2:
		kind, name = parts[0], parts[1]
	case 3:
		ns, kind, name = parts[0], parts[1], parts[2]
	default:
		return ObjectRef{}, fmt.Errorf("%q: name an object as kind/name or namespace/kind/name, e.g. deployment/web", s)
	}
	if kind == "" || name == "" {
		return ObjectRef{}, fmt.Errorf("%q: name an object as kind/name or namespace/kind/name, e.g. deployment/web", s)
	}
	res, group, _ := strings.Cut(strings.ToLower(kind), ".")
	gvr := schema.GroupVersionResource{Group: group, Resource: res}
	gvk, err := c.mapper.KindFor(gvr)
	if err != nil {
		c.mapper.Reset()
		if gvk, err = c.mapper.KindFor(gvr); err != nil {
			return ObjectRef{}, fmt.Errorf("%q: the cluster serves no kind %q: %w", s, kind, err)
		}
	}
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return ObjectRef{}, fmt.Errorf("%q: %w", s, err)
	}
	ref := ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Name: name}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ref.Namespace = ns
	}
	_ = ctx
	return ref, nil
}

// Refs returns the references objs will have once applied with
// ApplyOptions.Namespace ns: namespaced objects without a namespace get
// ns, cluster-scoped ones none. Kinds the cluster does not serve yet take
// their scope from a CustomResourceDefinition among objs, else are taken
// as namespaced. Nothing is changed.
func (c *Client) Refs(objs []*unstructured.Unstructured, ns string) ([]ObjectRef, error) {
	if ns == "" {
		ns = c.namespace
	}
	scopes := map[schema.GroupKind]meta.RESTScopeName{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == crdGK {
			if gk, scope, ok := crdScope(o); ok {
				scopes[gk] = scope
			}
		}
	}
	refs := make([]ObjectRef, len(objs))
	for i, o := range objs {
		ref := RefOf(o)
		scope := meta.RESTScopeNameNamespace
		m, err := c.mapping(ref.GroupVersionKind())
		switch {
		case err == nil:
			scope = m.Scope.Name()
		case meta.IsNoMatchError(err):
			if s, ok := scopes[ref.GroupVersionKind().GroupKind()]; ok {
				scope = s
			}
		default:
			return nil, err
		}
		if scope != meta.RESTScopeNameNamespace {
			ref.Namespace = ""
		} else if ref.Namespace == "" {
			ref.Namespace = ns
		}
		refs[i] = ref
	}
	return refs, nil
}
