package kube

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// maxWarnings bounds the warnings reported per object.
const maxWarnings = 3

// warnings returns the latest Warning events (newest last, at most
// maxWarnings) of the object ref names and of the objects it owns, down
// to its pods (ReplicaSets and Jobs in between), as "Kind name: Reason:
// message". Errors reading them yield no warnings: they only explain.
func (c *Client) warnings(ctx context.Context, ref ObjectRef, events []corev1.Event) []string {
	obj, err := c.Get(ctx, ref)
	if err != nil || ref.Namespace == "" {
		return nil
	}
	owners := map[types.UID]bool{obj.GetUID(): true}
	// two levels: Deployment → ReplicaSet → Pod, CronJob → Job → Pod
	for range 2 {
		for _, gvk := range []schema.GroupVersionKind{
			{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
			{Group: "batch", Version: "v1", Kind: "Job"},
			{Version: "v1", Kind: "Pod"},
		} {
			items, err := c.List(ctx, gvk, ref.Namespace, "")
			if err != nil {
				continue
			}
			for _, it := range items {
				for _, or := range it.GetOwnerReferences() {
					if owners[or.UID] {
						owners[it.GetUID()] = true
					}
				}
			}
		}
	}
	var out []string
	for _, e := range slices.Backward(events) {
		if e.Type != corev1.EventTypeWarning || !owners[e.InvolvedObject.UID] {
			continue
		}
		w := fmt.Sprintf("%s %s: %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
		if len(out) == maxWarnings {
			break
		}
	}
	slices.Reverse(out)
	return out
}

// Explain adds to each status the latest Warning events of its object
// and of what it owns down to its pods.
func (c *Client) Explain(ctx context.Context, sts []ObjectStatus) {
	c.explain(ctx, sts)
}

// explain adds the latest warnings to each not-ready status.
func (c *Client) explain(ctx context.Context, sts []ObjectStatus) {
	byNS := map[string][]corev1.Event{}
	for i := range sts {
		ns := sts[i].Ref.Namespace
		if ns == "" || sts[i].Status == "NotFound" {
			continue
		}
		evs, ok := byNS[ns]
		if !ok {
			evs, _ = c.Events(ctx, ns)
			byNS[ns] = evs
		}
		sts[i].Warnings = c.warnings(ctx, sts[i].Ref, evs)
	}
}
