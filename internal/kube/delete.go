package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultTimeout bounds Wait and Delete with Wait when no timeout is given.
const DefaultTimeout = 5 * time.Minute

// DeleteOptions configures Delete and Prune.
type DeleteOptions struct {
	// Wait blocks until the deleted objects are gone.
	Wait bool
	// Timeout bounds the wait; zero means DefaultTimeout.
	Timeout time.Duration
	// OnDeleted, when set, is called after each delete request.
	OnDeleted func(ObjectRef)
}

// Delete deletes refs in reverse order with foreground propagation, so
// owned objects go first. Objects (or kinds) that no longer exist are
// skipped. Every ref is attempted; failures are joined.
func (c *Client) Delete(ctx context.Context, refs []ObjectRef, opts DeleteOptions) error {
	policy := metav1.DeletePropagationForeground
	var errs []error
	var deleted []ObjectRef
	for _, ref := range slices.Backward(refs) {
		ri, err := c.resourceFor(ref)
		if meta.IsNoMatchError(err) {
			continue // its CRD is gone, and with it the object
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", ref, err))
			continue
		}
		err = ri.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &policy})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", ref, classify(err)))
			continue
		}
		deleted = append(deleted, ref)
		if opts.OnDeleted != nil {
			opts.OnDeleted(ref)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !opts.Wait || len(deleted) == 0 {
		return nil
	}
	return c.waitGone(ctx, deleted, opts.Timeout)
}

// waitGone polls until every ref is NotFound.
func (c *Client) waitGone(ctx context.Context, refs []ObjectRef, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	pending := refs
	for {
		var still []ObjectRef
		for _, ref := range pending {
			if _, err := c.Get(ctx, ref); !errors.Is(err, ErrNotFound) {
				still = append(still, ref)
			}
		}
		if len(still) == 0 {
			return nil
		}
		pending = still
		select {
		case <-ctx.Done():
			names := make([]string, len(pending))
			for i, r := range pending {
				names[i] = r.String()
			}
			return fmt.Errorf("%d objects still present after %s: %s: check their finalizers with `kubectl get %s -o yaml`, or raise --timeout",
				len(pending), timeout, strings.Join(names, ", "), pending[0].kubectlName()+nsFlag(pending[0]))
		case <-tick.C:
		}
	}
}

func nsFlag(r ObjectRef) string {
	if r.Namespace == "" {
		return ""
	}
	return " -n " + r.Namespace
}

// Prune deletes the objects of old that are not in keep (compared by
// group, kind, namespace and name; the version may differ). It never
// deletes Namespaces or CustomResourceDefinitions, because that would
// destroy data beyond the release: those are returned as skipped.
func (c *Client) Prune(ctx context.Context, old, keep []ObjectRef, opts DeleteOptions) (skipped []ObjectRef, err error) {
	var doomed []ObjectRef
	for _, ref := range old {
		if slices.ContainsFunc(keep, func(k ObjectRef) bool { return sameObject(k, ref) }) {
			continue
		}
		gk := ref.GroupVersionKind().GroupKind()
		if gk == namespaceGK || gk == crdGK {
			skipped = append(skipped, ref)
			continue
		}
		doomed = append(doomed, ref)
	}
	return skipped, c.Delete(ctx, doomed, opts)
}
