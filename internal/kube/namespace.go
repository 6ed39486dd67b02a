package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// EnsureNamespace creates the namespace when it does not exist.
func (c *Client) EnsureNamespace(ctx context.Context, name string) error {
	exists, err := c.namespaceExists(ctx, name)
	if err != nil || exists {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err = c.typed.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: DefaultFieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, classify(err))
	}
	return nil
}

func (c *Client) namespaceExists(ctx context.Context, name string) (bool, error) {
	_, err := c.typed.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("reading namespace %s: %w", name, classify(err))
}

// NamespaceObjects lists the objects in namespace ns, of every namespaced
// kind the cluster serves and lets list, except events. Only metadata is
// filled in.
func (c *Client) NamespaceObjects(ctx context.Context, ns string) ([]*unstructured.Unstructured, error) {
	lists, err := c.discovery.ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovering the kinds in namespace %s: %w", ns, err)
	}
	var out []*unstructured.Unstructured
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			// Events and the core Endpoints (controller-made, deprecated:
			// listing them prints a warning) are never anyone's objects.
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || r.Kind == "Event" ||
				(l.GroupVersion == "v1" && r.Kind == "Endpoints") {
				continue
			}
			list, err := c.dynamic.Resource(gv.WithResource(r.Name)).Namespace(ns).List(ctx, metav1.ListOptions{})
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("listing %s in namespace %s: %w", r.Name, ns, classify(err))
			}
			for i := range list.Items {
				it := &list.Items[i]
				it.SetAPIVersion(gv.String())
				it.SetKind(r.Kind)
				out = append(out, it)
			}
		}
	}
	return out, nil
}

// Namespaces lists the names of the cluster's namespaces, sorted.
func (c *Client) Namespaces(ctx context.Context) ([]string, error) {
	l, err := c.typed.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", classify(err))
	}
	out := make([]string, 0, len(l.Items))
	for _, n := range l.Items {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out, nil
}
