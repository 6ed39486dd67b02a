package kube

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// DefaultFieldManager is the server-side apply field manager used when
// ApplyOptions.FieldManager is empty.
const DefaultFieldManager = "skiff"

// crdEstablishTimeout bounds the wait for an applied CRD to be served.
const crdEstablishTimeout = time.Minute

var (
	namespaceGK = schema.GroupKind{Kind: "Namespace"}
	crdGK       = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
)

// ApplyOptions configures Apply.
type ApplyOptions struct {
	// FieldManager names the server-side apply field manager; empty means
	// DefaultFieldManager.
	FieldManager string
	// Namespace is given to namespaced objects that name none; empty means
	// the client's default namespace.
	Namespace string
	// Force takes ownership of fields managed by other field managers
	// instead of failing with a conflict.
	Force bool
	// DryRun asks the server to validate without persisting. Objects that
	// cannot be checked because their namespace or CRD is only created by
	// this call are skipped (and still returned).
	DryRun bool
	// Labels are added to every object (ownership labels); they override
	// labels of the same key in the manifests.
	Labels map[string]string
	// OnApplied, when set, is called after each object is applied.
	OnApplied func(ObjectRef)
	// OnResult, when set, is called with the object the server returned
	// for each object applied (in a dry run: the object as it would be).
	OnResult func(ObjectRef, *unstructured.Unstructured)
}

// planned is one object ready to apply.
type planned struct {
	obj     *unstructured.Unstructured
	ref     ObjectRef
	mapping *meta.RESTMapping // nil: cannot be checked in a dry run
}

// Apply server-side applies objs and returns their references in the
// order applied: Namespaces, CustomResourceDefinitions (waiting until they
// are Established, so custom resources of the same call can follow), other
// cluster-scoped objects, then namespaced ones. Namespaces that namespaced
// objects need are created when missing. objs are not modified.
func (c *Client) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) ([]ObjectRef, error) {
	if opts.FieldManager == "" {
		opts.FieldManager = DefaultFieldManager
	}
	if opts.Namespace == "" {
		opts.Namespace = c.namespace
	}
	var nss, crds, rest []*unstructured.Unstructured
	crdScopes := map[schema.GroupKind]meta.RESTScopeName{}
	for i, o := range objs {
		if err := checkObject(o); err != nil {
			return nil, fmt.Errorf("object %d: %w", i+1, err)
		}
		o = prepare(o, opts.Labels)
		switch o.GroupVersionKind().GroupKind() {
		case namespaceGK:
			nss = append(nss, o)
		case crdGK:
			crds = append(crds, o)
			if gk, scope, ok := crdScope(o); ok {
				crdScopes[gk] = scope
			}
		default:
			rest = append(rest, o)
		}
	}

	// the callbacks are called from the goroutines of applyTier, one at a time
	var mu sync.Mutex
	if f := opts.OnResult; f != nil {
		opts.OnResult = func(ref ObjectRef, u *unstructured.Unstructured) { mu.Lock(); defer mu.Unlock(); f(ref, u) }
	}
	var applied []ObjectRef
	apply := func(p planned) error {
		if p.mapping != nil {
			if err := c.applyOne(ctx, p, opts); err != nil {
				return err
			}
		}
		if opts.OnApplied != nil {
			mu.Lock()
			opts.OnApplied(p.ref)
			mu.Unlock()
		}
		return nil
	}

	// Namespaces and CRDs are cluster-scoped and core to every cluster.
	for _, group := range [][]*unstructured.Unstructured{nss, crds} {
		for _, o := range group {
			p, err := c.plan(o, opts.Namespace)
			if err != nil {
				return applied, err
			}
			if err := apply(p); err != nil {
				return applied, err
			}
			applied = append(applied, p.ref)
		}
	}
	if len(crds) > 0 && !opts.DryRun {
		for _, o := range crds {
			if err := c.waitEstablished(ctx, o.GetName()); err != nil {
				return applied, err
			}
		}
		c.mapper.Reset()
	}

	var cluster, namespaced []planned
	for _, o := range rest {
		p, err := c.plan(o, opts.Namespace)
		if err != nil {
			scope, ok := crdScopes[o.GroupVersionKind().GroupKind()]
			if !opts.DryRun || !ok || !meta.IsNoMatchError(err) {
				return applied, err
			}
			// Dry run: the CRD of this object is part of the call but
			// was not created, so the object cannot be checked.
			p = planned{obj: o, ref: RefOf(o)}
			if scope == meta.RESTScopeNameNamespace {
				if p.ref.Namespace == "" {
					p.ref.Namespace = opts.Namespace
				}
			} else {
				p.ref.Namespace = ""
			}
		}
		if p.ref.Namespace == "" {
			cluster = append(cluster, p)
		} else {
			namespaced = append(namespaced, p)
		}
	}

	// Namespaces that namespaced objects land in must exist.
	present := map[string]bool{}
	for _, p := range namespaced {
		ns := p.ref.Namespace
		if _, done := present[ns]; done {
			continue
		}
		if opts.DryRun {
			exists, err := c.namespaceExists(ctx, ns)
			if err != nil {
				return applied, err
			}
			present[ns] = exists
			continue
		}
		if err := c.EnsureNamespace(ctx, ns); err != nil {
			return applied, err
		}
		present[ns] = true
	}
	for i, p := range namespaced {
		if !present[p.ref.Namespace] {
			namespaced[i].mapping = nil // dry run into a namespace this call would create
		}
	}
	for _, tier := range [][]planned{cluster, namespaced} {
		refs, err := applyTier(tier, apply)
		applied = append(applied, refs...)
		if err != nil {
			return applied, err
		}
	}
	return applied, nil
}

// applyParallel bounds the objects applied at once: one request each, so
// that a hundred objects take a few round trips, not a hundred.
const applyParallel = 8

// applyTier applies ps in waves by installRank (what other objects rely
// on first, as Helm orders them: quotas, service accounts, configuration,
// RBAC, services, then workloads, then kinds it does not know), each wave
// at most applyParallel at a time. A failed wave ends it. It returns the
// references applied, in ps's order, and the first error in that order.
func applyTier(ps []planned, apply func(planned) error) ([]ObjectRef, error) {
	ranks := map[int][]int{}
	for i, p := range ps {
		r := installRank(p.ref.Kind)
		ranks[r] = append(ranks[r], i)
	}
	errs := make([]error, len(ps))
	tried := make([]bool, len(ps))
	for _, r := range slices.Sorted(maps.Keys(ranks)) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, applyParallel)
		for _, i := range ranks[r] {
			tried[i] = true
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				errs[i] = apply(ps[i])
			}()
		}
		wg.Wait()
		if slices.ContainsFunc(ranks[r], func(i int) bool { return errs[i] != nil }) {
			break
		}
	}
	var refs []ObjectRef
	var first error
	for i, p := range ps {
		switch {
		case !tried[i]:
		case errs[i] != nil:
			if first == nil {
				first = errs[i]
			}
		default:
			refs = append(refs, p.ref)
		}
	}
	return refs, first
}

// installOrder is Helm's order of kinds on install (releaseutil's
// InstallOrder): what other objects rely on comes first.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList",
	"RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController",
	"ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
	"IngressClass", "Ingress", "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
}

// installRank is kind's place in installOrder; unknown kinds (custom
// resources) come after all of them.
func installRank(kind string) int {
	if i := slices.Index(installOrder, kind); i >= 0 {
		return i
	}
	return len(installOrder)
}

// plan resolves the object's resource and namespace.
func (c *Client) plan(o *unstructured.Unstructured, defaultNS string) (planned, error) {
	ref := RefOf(o)
	m, err := c.mapping(ref.GroupVersionKind())
	if err != nil {
		return planned{}, fmt.Errorf("applying %s: %w", ref, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if ref.Namespace == "" {
			ref.Namespace = defaultNS
		}
	} else {
		ref.Namespace = ""
	}
	o.SetNamespace(ref.Namespace)
	return planned{obj: o, ref: ref, mapping: m}, nil
}

func (c *Client) applyOne(ctx context.Context, p planned, opts ApplyOptions) error {
	ao := metav1.ApplyOptions{FieldManager: opts.FieldManager, Force: opts.Force}
	if opts.DryRun {
		ao.DryRun = []string{metav1.DryRunAll}
	}
	res, err := c.resource(p.mapping, p.ref.Namespace).Apply(ctx, p.ref.Name, p.obj, ao)
	if err == nil {
		if opts.OnResult != nil {
			opts.OnResult(p.ref, res)
		}
		return nil
	}
	if apierrors.IsConflict(err) {
		return fmt.Errorf("applying %s: %w: another tool manages these fields; rerun with --force to take them over", p.ref, classify(err))
	}
	return fmt.Errorf("applying %s: %w", p.ref, classify(err))
}

// prepare returns a copy of o with labels added and the server-owned
// metadata (as found in `kubectl get -o yaml` output) removed, which
// server-side apply would reject.
func prepare(o *unstructured.Unstructured, labels map[string]string) *unstructured.Unstructured {
	o = o.DeepCopy()
	if len(labels) > 0 {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		maps.Copy(l, labels)
		o.SetLabels(l)
	}
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	return o
}

// crdScope reads the group, kind and scope a CRD object defines.
func crdScope(crd *unstructured.Unstructured) (schema.GroupKind, meta.RESTScopeName, bool) {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	scope, _, _ := unstructured.NestedString(crd.Object, "spec", "scope")
	if kind == "" {
		return schema.GroupKind{}, "", false
	}
	s := meta.RESTScopeNameRoot
	if scope == "Namespaced" {
		s = meta.RESTScopeNameNamespace
	}
	return schema.GroupKind{Group: group, Kind: kind}, s, true
}

// mapping resolves gvk to a resource. When the kind is unknown, the
// discovery cache is dropped and the lookup retried once, so kinds whose
// CRD was just created are found.
func (c *Client) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if meta.IsNoMatchError(err) {
		return nil, &noMatchError{gvk: gvk, err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", gvk, err)
	}
	return m, nil
}

// noMatchError explains an unknown kind; it unwraps to the RESTMapper's
// NoKindMatchError.
type noMatchError struct {
	gvk schema.GroupVersionKind
	err error
}

func (e *noMatchError) Error() string {
	return fmt.Sprintf("the cluster does not serve kind %s in %s: install its CustomResourceDefinition first or fix the apiVersion", e.gvk.Kind, e.gvk.GroupVersion())
}
func (e *noMatchError) Unwrap() error { return e.err }

func (c *Client) resource(m *meta.RESTMapping, ns string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dynamic.Resource(m.Resource).Namespace(ns)
	}
	return c.dynamic.Resource(m.Resource)
}

// resourceFor resolves ref to a client for its resource.
func (c *Client) resourceFor(ref ObjectRef) (dynamic.ResourceInterface, error) {
	m, err := c.mapping(ref.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	return c.resource(m, ref.Namespace), nil
}

// waitEstablished polls the CRD until its Established condition is True.
func (c *Client) waitEstablished(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, crdEstablishTimeout)
	defer cancel()
	gvr := schema.GroupVersionResource{Group: crdGK.Group, Version: "v1", Resource: "customresourcedefinitions"}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		crd, err := c.dynamic.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
		if err == nil && conditionTrue(crd, "Established") {
			return nil
		}
		select {
		case <-ctx.Done():
			msg := "not found"
			if crd != nil {
				msg = conditionMessage(crd, "NamesAccepted")
			}
			return fmt.Errorf("CustomResourceDefinition %s did not become Established within %s (%s): check `kubectl describe crd %s`", name, crdEstablishTimeout, msg, name)
		case <-tick.C:
		}
	}
}

func conditionTrue(o *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	return slices.ContainsFunc(conds, func(c any) bool {
		m, _ := c.(map[string]any)
		return m["type"] == typ && m["status"] == "True"
	})
}

func conditionMessage(o *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == typ {
			msg, _ := m["message"].(string)
			return msg
		}
	}
	return "no status yet"
}
