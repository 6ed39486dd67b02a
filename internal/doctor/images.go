package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/internal/oci"
)

// workloadKinds are listed for their images, with the path of their pod
// spec.
var workloadKinds = []struct {
	gvk  schema.GroupVersionKind
	spec []string
}{
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, []string{"spec", "template", "spec"}},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, []string{"spec", "template", "spec"}},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, []string{"spec", "template", "spec"}},
	{schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, []string{"spec", "jobTemplate", "spec", "template", "spec"}},
	{schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, []string{"spec", "template", "spec"}},
	{schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, []string{"spec"}},
}

// maxUsers is how many users of an image a result names.
const maxUsers = 3

// checkImages checks that every image the workloads run is in the site's
// registry: one from another registry cannot be pulled inside the air gap
// (warn), one missing from the site's registry will fail to pull (fail).
func checkImages(ctx context.Context, e *Env) []Result {
	if e.Registry == "" {
		return []Result{{Severity: OK, Message: "skipped: pass --registry to check that workload images are in it"}}
	}
	users := map[string][]string{} // image → "Deployment ns/name"
	var out []Result
	for _, w := range workloadKinds {
		objs, err := e.Kube.List(ctx, w.gvk, e.Namespace, "")
		if err != nil {
			out = append(out, Result{Severity: Warn, Subject: w.gvk.Kind, Message: err.Error()})
			continue
		}
		for _, o := range objs {
			who := w.gvk.Kind + " " + o.GetNamespace() + "/" + o.GetName()
			for _, im := range podImages(o.Object, w.spec...) {
				if !slices.Contains(users[im], who) {
					users[im] = append(users[im], who)
				}
			}
		}
	}
	reg, err := siteRegistry(e)
	if err != nil {
		return append(out, Result{Severity: Fail, Message: err.Error(), Fix: "pass --registry [https://|http://]HOST[:PORT][/PREFIX]"})
	}
	host := reg.Host()
	if err := reg.Ping(ctx); err != nil {
		return append(out, Result{Severity: Fail, Message: fmt.Sprintf("cannot check %d images: %v", len(users), err), Fix: "see the registry check"})
	}
	var (
		mu      sync.Mutex
		present int
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.Concurrency)
	for im, who := range users {
		g.Go(func() error {
			r := checkImage(gctx, reg, host, im, who)
			mu.Lock()
			defer mu.Unlock()
			if r == nil {
				present++
			} else {
				out = append(out, *r)
			}
			return nil
		})
	}
	g.Wait()
	return append(out, Result{Severity: OK, Message: fmt.Sprintf("%d of %d workload images are in %s", present, len(users), host)})
}

// checkImage returns nil when im is in reg, else a finding.
func checkImage(ctx context.Context, reg *oci.Registry, host, im string, who []string) *Result {
	subject := "image " + im
	used := "used by " + strings.Join(who[:min(len(who), maxUsers)], ", ")
	if len(who) > maxUsers {
		used += fmt.Sprintf(" and %d more", len(who)-maxUsers)
	}
	h, repo, ref, err := oci.SplitRef(im)
	if err != nil {
		return &Result{Severity: Warn, Subject: subject, Message: err.Error() + "; " + used, Fix: "fix the image reference of the workload"}
	}
	if h != host {
		return &Result{Severity: Warn, Subject: subject,
			Message: fmt.Sprintf("not from the local registry (%s, not %s); %s", h, host, used),
			Fix:     "install it through a skiff package so it is relocated to " + host + ", or mirror the image there and update the workload"}
	}
	d, err := reg.Resolve(ctx, repo, ref)
	if err == nil {
		// The manifest is there; so must its blobs be (a sweep or a
		// damaged storage can lose them).
		missing, merr := reg.MissingBlobs(ctx, repo, d)
		if err = merr; err == nil {
			if len(missing) == 0 {
				return nil
			}
			return &Result{Severity: Fail, Subject: subject,
				Message: fmt.Sprintf("its manifest is in the registry but %d of its blobs are not (first: %s); %s", len(missing), missing[0].Digest, used),
				Fix:     "load the package that carries it again (skiff load PACKAGE --registry " + host + "): it pushes the missing blobs"}
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, oci.ErrNotFound):
		return &Result{Severity: Fail, Subject: subject, Message: "missing from the registry; " + used,
			Fix: "load the package that carries it again (skiff load PACKAGE --registry " + host + ")"}
	}
	return &Result{Severity: Fail, Subject: subject, Message: err.Error() + "; " + used}
}

// podImages lists the images of the pod spec at path.
func podImages(obj map[string]any, path ...string) []string {
	var out []string
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		cs, _, _ := unstructured.NestedSlice(obj, append(slices.Clone(path), field)...)
		for _, c := range cs {
			m, _ := c.(map[string]any)
			if im, _ := m["image"].(string); im != "" {
				out = append(out, im)
			}
		}
	}
	return out
}
