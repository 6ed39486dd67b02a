package kube

import (
	"context"
	"fmt"
	"io"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// maxLogBytes bounds PodLogs.
const maxLogBytes = 10 << 20

// Get reads the object ref names. A missing object, or a kind the cluster
// does not serve, gives ErrNotFound.
func (c *Client) Get(ctx context.Context, ref ObjectRef) (*unstructured.Unstructured, error) {
	ri, err := c.resourceFor(ref)
	if meta.IsNoMatchError(err) {
		return nil, &apiError{ErrNotFound, err}
	}
	if err != nil {
		return nil, err
	}
	obj, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, classify(err))
	}
	return obj, nil
}

// List lists objects of kind gvk in namespace ns ("" means all namespaces,
// or the kind is cluster-scoped) matching the label selector ("" means
// everything).
func (c *Client) List(ctx context.Context, gvk schema.GroupVersionKind, ns, selector string) ([]unstructured.Unstructured, error) {
	m, err := c.mapping(gvk)
	if err != nil {
		return nil, err
	}
	ri := c.dynamic.Resource(m.Resource)
	var list *unstructured.UnstructuredList
	if m.Scope.Name() == meta.RESTScopeNameNamespace && ns != "" {
		list, err = ri.Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	} else {
		list, err = ri.List(ctx, metav1.ListOptions{LabelSelector: selector})
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", m.Resource.Resource, classify(err))
	}
	return list.Items, nil
}

// Events lists the events of namespace ns ("" means all), oldest first.
func (c *Client) Events(ctx context.Context, ns string) ([]corev1.Event, error) {
	list, err := c.typed.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", classify(err))
	}
	evs := list.Items
	slices.SortStableFunc(evs, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b).Time) })
	return evs, nil
}

func eventTime(e corev1.Event) metav1.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp
	case !e.EventTime.IsZero():
		return metav1.NewTime(e.EventTime.Time)
	}
	return e.CreationTimestamp
}

// PodLogs returns the last tailLines lines (all when tailLines <= 0) of a
// container's log, at most 10 MiB. container may be empty for
// single-container pods.
func (c *Client) PodLogs(ctx context.Context, ns, pod, container string, tailLines int64) ([]byte, error) {
	opts := &corev1.PodLogOptions{Container: container}
	if tailLines > 0 {
		opts.TailLines = &tailLines
	}
	limit := int64(maxLogBytes)
	opts.LimitBytes = &limit
	rc, err := c.typed.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading logs of pod %s/%s: %w", ns, pod, classify(err))
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLogBytes))
	if err != nil {
		return nil, fmt.Errorf("reading logs of pod %s/%s: %w", ns, pod, err)
	}
	return b, nil
}
