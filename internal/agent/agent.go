// Package agent is skiff's admission agent: a mutating admission webhook,
// served by the skiff binary itself, that points the images of Pods (and
// optionally of pod templates) at the site registry, pinned by digest.
//
// It reaches the images that render-time relocation cannot: those an
// operator starts at run time from a flag, those in ConfigMaps, and those
// of anything applied later by someone else. An image the site registry
// lacks is refused with a message naming it, or only warned about.
//
// [Mutator] decides; [Server] serves it over TLS with a certificate that
// [Rotator] renews well before it expires; [Objects] and [Install] put the
// agent into a cluster and [Uninstall] takes it out again.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/oci"
)

// ErrNotInRegistry is matched (errors.Is) by a Resolver's error for an
// image the site registry does not hold.
var ErrNotInRegistry = oci.ErrNotFound

// Resolver looks an image up in the site registry: repo is the repository
// path on the registry host, ref a tag or digest. A missing image gives an
// error matching ErrNotInRegistry.
type Resolver interface {
	Resolve(ctx context.Context, repo, ref string) (digest.Digest, error)
}

// Policy says which images the agent rewrites and how.
type Policy struct {
	// Registry is the site registry with its prefix; images are looked up
	// and rewritten under Host/Prefix/<source host>/<path>, the layout
	// skiff load writes.
	Registry images.Destination
	// Namespace is the agent's own namespace: never touched, like
	// kube-system.
	Namespace string
	// ExcludeNamespaces are namespaces whose objects pass unchanged.
	ExcludeNamespaces []string
	// ExcludeLabels: an object carrying any of these label=value pairs
	// passes unchanged.
	ExcludeLabels map[string]string
	// Warn admits an image the registry lacks, unchanged, with a warning,
	// instead of refusing it.
	Warn bool
}

// AlwaysExcluded are the namespaces the agent never blocks.
var AlwaysExcluded = []string{"kube-system"}

// Mutator rewrites the images of admitted objects. It caches what the
// registry holds for CacheTTL. It is safe for concurrent use.
type Mutator struct {
	Policy   Policy
	Resolver Resolver
	// CacheTTL bounds how long a resolved digest is reused; zero means a
	// minute. Missing images are never cached.
	CacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	d   digest.Digest
	exp time.Time
}

// podSpecPaths are where each kind keeps its pod spec.
var podSpecPaths = map[string][]string{
	"Pod":         {"spec"},
	"Deployment":  {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	"ReplicaSet":  {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
}

// Review answers one admission request.
func (m *Mutator) Review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if m.skipped(req) {
		return resp
	}
	path, ok := podSpecPaths[req.Kind.Kind]
	if !ok {
		return resp
	}
	var obj map[string]any
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return deny(resp, fmt.Sprintf("skiff agent: decoding %s: %v", req.Kind.Kind, err), 400)
	}
	if m.excludedByLabel(obj) {
		return resp
	}
	spec, _ := nested(obj, path).(map[string]any)
	if spec == nil {
		return resp
	}
	var patch []patchOp
	var missing []string
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		cs, _ := spec[field].([]any)
		for i, c := range cs {
			cm, _ := c.(map[string]any)
			img, _ := cm["image"].(string)
			if img == "" {
				continue
			}
			target, err := m.target(ctx, img)
			switch {
			case errors.Is(err, ErrNotInRegistry):
				missing = append(missing, img)
				continue
			case err != nil:
				return deny(resp, fmt.Sprintf("skiff agent: image %s: %v", img, err), 500)
			case target == "":
				continue
			}
			p := "/" + strings.Join(append(slices.Clone(path), field, fmt.Sprint(i), "image"), "/")
			patch = append(patch, patchOp{Op: "replace", Path: p, Value: target})
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		missing = slices.Compact(missing)
		msg := fmt.Sprintf("image %s is not in the site registry %s: load the package that carries it (skiff load), or add it to a package's images", strings.Join(missing, ", "), m.site())
		if !m.Policy.Warn {
			return deny(resp, "skiff agent: "+msg, 403)
		}
		resp.Warnings = append(resp.Warnings, "skiff agent: "+msg+"; admitted unchanged, nodes will try the original registry")
	}
	if len(patch) > 0 {
		b, err := json.Marshal(patch)
		if err != nil {
			return deny(resp, "skiff agent: "+err.Error(), 500)
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = b, &pt
	}
	return resp
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

func deny(resp *admissionv1.AdmissionResponse, msg string, code int32) *admissionv1.AdmissionResponse {
	resp.Allowed = false
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Message: msg, Code: code, Reason: metav1.StatusReasonForbidden}
	return resp
}

// skipped reports whether the request's namespace is excluded.
func (m *Mutator) skipped(req *admissionv1.AdmissionRequest) bool {
	ns := req.Namespace
	if ns == m.Policy.Namespace || slices.Contains(AlwaysExcluded, ns) || slices.Contains(m.Policy.ExcludeNamespaces, ns) {
		return true
	}
	return req.Operation != admissionv1.Create && req.Operation != admissionv1.Update
}

func (m *Mutator) excludedByLabel(obj map[string]any) bool {
	labels, _ := nested(obj, []string{"metadata", "labels"}).(map[string]any)
	for k, v := range m.Policy.ExcludeLabels {
		if s, ok := labels[k].(string); ok && s == v {
			return true
		}
	}
	return false
}

func (m *Mutator) site() string {
	if p := strings.Trim(m.Policy.Registry.Prefix, "/"); p != "" {
		return m.Policy.Registry.Host + "/" + p
	}
	return m.Policy.Registry.Host
}

// target returns the site reference of img pinned by digest, or "" when
// img is already in the site registry (on its host, under any path).
func (m *Mutator) target(ctx context.Context, img string) (string, error) {
	named, err := reference.ParseNormalizedNamed(strings.TrimSpace(img))
	if err != nil {
		return "", fmt.Errorf("not a valid image reference: %w", err)
	}
	if m.inSite(named) {
		return "", nil
	}
	named = reference.TagNameOnly(named)
	full, err := images.TargetRepo(named.String(), m.Policy.Registry)
	if err != nil {
		return "", err
	}
	repo := strings.TrimPrefix(full, m.Policy.Registry.Host+"/")
	ref := ""
	if c, ok := named.(reference.Canonical); ok {
		ref = c.Digest().String()
	} else if t, ok := named.(reference.Tagged); ok {
		ref = t.Tag()
	}
	d, err := m.resolve(ctx, repo, ref)
	if err != nil {
		return "", err
	}
	return images.Target(named.String(), m.Policy.Registry, d)
}

// inSite reports whether named is on the site registry's host, under
// whatever path: such an image is already pullable where nodes pull from.
func (m *Mutator) inSite(named reference.Named) bool {
	return reference.Domain(named) == m.Policy.Registry.Host
}

func (m *Mutator) resolve(ctx context.Context, repo, ref string) (digest.Digest, error) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	key := repo + "@" + ref
	m.mu.Lock()
	if c, ok := m.cache[key]; ok && now().Before(c.exp) {
		m.mu.Unlock()
		return c.d, nil
	}
	m.mu.Unlock()
	d, err := m.Resolver.Resolve(ctx, repo, ref)
	if err != nil {
		return "", err
	}
	ttl := m.CacheTTL
	if ttl == 0 {
		ttl = time.Minute
	}
	m.mu.Lock()
	if m.cache == nil {
		m.cache = map[string]cached{}
	}
	m.cache[key] = cached{d: d, exp: now().Add(ttl)}
	m.mu.Unlock()
	return d, nil
}

func nested(obj map[string]any, path []string) any {
	var cur any = obj
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// RegistryResolver resolves images in a registry reached with oci.
type RegistryResolver struct {
	Registry *oci.Registry
}

// Resolve implements Resolver.
func (r RegistryResolver) Resolve(ctx context.Context, repo, ref string) (digest.Digest, error) {
	d, err := r.Registry.Resolve(ctx, repo, ref)
	if err != nil {
		return "", err
	}
	return d.Digest, nil
}
