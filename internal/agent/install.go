package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/internal/kube"
)

// Ownership labels on everything the agent's installer creates.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelAgent     = "skiff.dev/agent"
)

// InstallFieldManager applies what Install creates; the agent's own
// FieldManager owns only the caBundle it publishes.
const InstallFieldManager = kube.DefaultFieldManager

// Defaults for an installed agent.
const (
	DefaultName      = "skiff-agent"
	DefaultNamespace = "skiff-system"
	// DefaultFailurePolicy is Fail: in an air gap an image the agent did
	// not rewrite cannot be pulled anyway, so admitting it while the agent
	// is down only trades a clear refusal for ImagePullBackOff. The
	// agent's own namespace and kube-system are never sent to it, so it
	// can always start again.
	DefaultFailurePolicy = "Fail"
)

// WebhookOptions describe the MutatingWebhookConfiguration.
type WebhookOptions struct {
	// Name of the configuration; DefaultName if empty.
	Name string
	// Namespace is the agent's own; it is excluded with kube-system and
	// ExcludeNamespaces.
	Namespace         string
	ExcludeNamespaces []string
	// ExcludeLabels: objects with any of these label=value pairs are not
	// sent to the agent.
	ExcludeLabels map[string]string
	// NamespaceLabels, when set, limit the agent to namespaces carrying
	// all of these labels (opt-in per namespace).
	NamespaceLabels map[string]string
	// PodTemplates also sends Deployments, StatefulSets, DaemonSets,
	// ReplicaSets, Jobs and CronJobs.
	PodTemplates bool
	// FailurePolicy is Fail or Ignore; DefaultFailurePolicy if empty.
	FailurePolicy string
	// URL, when set, is where the API server calls the agent (for an
	// agent outside the cluster); otherwise the Service Name in Namespace.
	URL string
	// CABundle is the PEM bundle the API server trusts for the agent.
	CABundle []byte
	Labels   map[string]string
}

// Webhook returns the MutatingWebhookConfiguration for o.
func Webhook(o WebhookOptions) (*unstructured.Unstructured, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	fp := o.FailurePolicy
	if fp == "" {
		fp = DefaultFailurePolicy
	}
	if fp != "Fail" && fp != "Ignore" {
		return nil, fmt.Errorf("failure policy %q: use Fail or Ignore", fp)
	}
	excluded := append(append([]string{o.Namespace}, AlwaysExcluded...), o.ExcludeNamespaces...)
	excluded = slices.DeleteFunc(excluded, func(s string) bool { return s == "" })
	slices.Sort(excluded)
	excluded = slices.Compact(excluded)
	nsSel := map[string]any{"matchExpressions": []any{map[string]any{
		"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": toAny(excluded),
	}}}
	if len(o.NamespaceLabels) > 0 {
		nsSel["matchLabels"] = toAnyMap(o.NamespaceLabels)
	}
	var objExprs []any
	for _, k := range slices.Sorted(maps.Keys(o.ExcludeLabels)) {
		objExprs = append(objExprs, map[string]any{"key": k, "operator": "NotIn", "values": []any{o.ExcludeLabels[k]}})
	}
	cc := map[string]any{}
	if o.URL != "" {
		cc["url"] = o.URL
	} else {
		cc["service"] = map[string]any{"name": o.Name, "namespace": o.Namespace, "path": MutatePath, "port": int64(443)}
	}
	if len(o.CABundle) > 0 {
		cc["caBundle"] = base64.StdEncoding.EncodeToString(o.CABundle)
	}
	rules := []any{map[string]any{
		"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE", "UPDATE"}, "resources": []any{"pods"}, "scope": "Namespaced",
	}}
	if o.PodTemplates {
		rules = append(rules,
			map[string]any{"apiGroups": []any{"apps"}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE", "UPDATE"},
				"resources": []any{"deployments", "statefulsets", "daemonsets", "replicasets"}, "scope": "Namespaced"},
			map[string]any{"apiGroups": []any{"batch"}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE", "UPDATE"},
				"resources": []any{"jobs", "cronjobs"}, "scope": "Namespaced"})
	}
	hook := map[string]any{
		"name":                    "images.agent.skiff.dev",
		"admissionReviewVersions": []any{"v1"},
		"sideEffects":             "None",
		"failurePolicy":           fp,
		"matchPolicy":             "Equivalent",
		"reinvocationPolicy":      "IfNeeded",
		"timeoutSeconds":          int64(10),
		"clientConfig":            cc,
		"namespaceSelector":       nsSel,
		"rules":                   rules,
	}
	if len(objExprs) > 0 {
		hook["objectSelector"] = map[string]any{"matchExpressions": objExprs}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
		"metadata": map[string]any{"name": o.Name, "labels": toAnyMap(o.Labels)},
		"webhooks": []any{hook},
	}}, nil
}

// InstallOptions configure Install.
type InstallOptions struct {
	WebhookOptions
	// Image is the agent's image, pinned by digest (see PushImage).
	Image string
	// Registry is the site registry with prefix (HOST[/PREFIX]) the agent
	// rewrites to; Args are extra `skiff agent serve` flags (mode,
	// exclusions, certificate lifetime).
	Registry string
	Args     []string
	// RegistryCA, when set, is the PEM CA bundle the agent trusts for the
	// registry (its image holds no CA certificates); it goes into a
	// ConfigMap mounted into the agent's Pod.
	RegistryCA []byte
	// Replicas of the agent Deployment; 1 if zero.
	Replicas int32
	// Cert tunes the initial certificate (Lifetime, RenewBefore).
	Cert CertOptions
	// Wait, when positive, bounds the wait for the Deployment to become
	// Available before the webhook configuration is applied.
	Wait time.Duration
	// HostNetwork, when set (IP:PORT), runs the agent in its node's
	// network namespace listening on that address; the webhook
	// configuration calls https://IP:PORT/mutate and the certificate names
	// the IP. It is for a cluster whose API server runs on the agent's
	// node and cannot reach Services (no kube-proxy); pin the agent to that
	// node with NodeSelector.
	HostNetwork string
	// APIServer, when set (HOST:PORT), is where the agent reaches the API
	// server instead of the kubernetes Service (no kube-proxy or DNS).
	APIServer string
	// NodeSelector and Tolerations place the agent's Pod.
	NodeSelector map[string]string
	Tolerations  []Toleration
}

// Toleration lets the agent's Pod run on tainted nodes. An empty Value
// tolerates every value of Key (operator Exists); an empty Effect every
// effect.
type Toleration struct {
	Key, Value, Effect string
}

// ParseToleration reads KEY[=VALUE][:EFFECT].
func ParseToleration(s string) (Toleration, error) {
	var t Toleration
	rest, effect, hasEffect := strings.Cut(s, ":")
	t.Key, t.Value, _ = strings.Cut(rest, "=")
	if hasEffect {
		switch effect {
		case "NoSchedule", "PreferNoSchedule", "NoExecute":
			t.Effect = effect
		default:
			return t, fmt.Errorf("toleration %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", s, effect)
		}
	}
	if t.Key == "" {
		return t, fmt.Errorf("toleration %q: use KEY[=VALUE][:EFFECT], e.g. dedicated=infra:NoSchedule", s)
	}
	return t, nil
}

func (t Toleration) object() map[string]any {
	m := map[string]any{"key": t.Key, "operator": "Exists"}
	if t.Value != "" {
		m["operator"], m["value"] = "Equal", t.Value
	}
	if t.Effect != "" {
		m["effect"] = t.Effect
	}
	return m
}

// hostAddr splits HostNetwork into its IP and port.
func (o InstallOptions) hostAddr() (net.IP, int64, error) {
	host, port, err := net.SplitHostPort(o.HostNetwork)
	if err != nil {
		return nil, 0, fmt.Errorf("host network address %q: %w (use IP:PORT, e.g. 127.0.0.1:9443)", o.HostNetwork, err)
	}
	ip := net.ParseIP(host)
	p, perr := strconv.ParseUint(port, 10, 16)
	if ip == nil || perr != nil || p == 0 {
		return nil, 0, fmt.Errorf("host network address %q: use IP:PORT, e.g. 127.0.0.1:9443", o.HostNetwork)
	}
	return ip, int64(p), nil
}

// Labels returns the ownership labels of agent name.
func Labels(name string) map[string]string {
	if name == "" {
		name = DefaultName
	}
	return map[string]string{LabelManagedBy: "skiff", LabelAgent: name}
}

// Objects returns what Install applies, the webhook configuration last.
func Objects(o InstallOptions) ([]*unstructured.Unstructured, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Image == "" || o.Registry == "" {
		return nil, errors.New("agent install needs the agent image and the site registry")
	}
	o.Labels = Labels(o.Name)
	replicas := o.Replicas
	if replicas == 0 {
		replicas = 1
	}
	l := toAnyMap(o.Labels)
	meta := func(name string, namespaced bool) map[string]any {
		m := map[string]any{"name": name, "labels": l}
		if namespaced {
			m["namespace"] = o.Namespace
		}
		return m
	}
	obj := func(apiVersion, kind string, namespaced bool, fields map[string]any) *unstructured.Unstructured {
		u := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta(o.Name, namespaced)}
		maps.Copy(u, fields)
		return &unstructured.Unstructured{Object: u}
	}
	args := []any{"agent", "serve", "--registry", o.Registry, "--namespace", o.Namespace, "--name", o.Name}
	for _, a := range o.Args {
		args = append(args, a)
	}
	for _, ns := range o.ExcludeNamespaces {
		args = append(args, "--exclude-namespace", ns)
	}
	for _, k := range slices.Sorted(maps.Keys(o.ExcludeLabels)) {
		args = append(args, "--exclude-label", k+"="+o.ExcludeLabels[k])
	}
	if o.Cert.Lifetime > 0 {
		args = append(args, "--cert-lifetime", o.Cert.Lifetime.String())
	}
	if o.Cert.RenewBefore > 0 {
		args = append(args, "--renew-before", o.Cert.RenewBefore.String())
	}
	port := int64(8443)
	probe := map[string]any{"path": "/healthz", "port": port, "scheme": "HTTPS"}
	env := []any{map[string]any{"name": "OTEL_TRACES_EXPORTER", "value": "none"}}
	if o.HostNetwork != "" {
		ip, p, err := o.hostAddr()
		if err != nil {
			return nil, err
		}
		port = p
		probe["port"], probe["host"] = p, ip.String()
		args = append(args, "--addr", o.HostNetwork, "--cert-ip", ip.String())
		if o.URL == "" {
			o.URL = "https://" + o.HostNetwork + MutatePath
		}
	}
	if o.APIServer != "" {
		host, p, err := net.SplitHostPort(o.APIServer)
		if err != nil || host == "" || p == "" {
			return nil, fmt.Errorf("API server address %q: use HOST:PORT, e.g. 127.0.0.1:6443", o.APIServer)
		}
		// what rest.InClusterConfig reads; the Pod's own values override
		// those kubelet sets from the kubernetes Service
		env = append(env, map[string]any{"name": "KUBERNETES_SERVICE_HOST", "value": host},
			map[string]any{"name": "KUBERNETES_SERVICE_PORT", "value": p})
	}
	container := map[string]any{
		"name": "agent", "image": o.Image,
		"ports":          []any{map[string]any{"name": "https", "containerPort": port}},
		"readinessProbe": map[string]any{"httpGet": probe},
		"securityContext": map[string]any{
			"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
			"capabilities": map[string]any{"drop": []any{"ALL"}},
		},
		"env": env,
	}
	podSpec := map[string]any{
		"serviceAccountName": o.Name,
		"securityContext":    map[string]any{"runAsNonRoot": true, "runAsUser": int64(65532), "runAsGroup": int64(65532)},
		"containers":         []any{container},
	}
	if o.HostNetwork != "" {
		podSpec["hostNetwork"] = true
	}
	if len(o.NodeSelector) > 0 {
		podSpec["nodeSelector"] = toAnyMap(o.NodeSelector)
	}
	if len(o.Tolerations) > 0 {
		tols := make([]any, len(o.Tolerations))
		for i, t := range o.Tolerations {
			tols[i] = t.object()
		}
		podSpec["tolerations"] = tols
	}
	var extra []*unstructured.Unstructured
	if len(o.RegistryCA) > 0 {
		const dir = "/etc/skiff/registry-ca"
		extra = append(extra, obj("v1", "ConfigMap", true, map[string]any{"data": map[string]any{"ca.crt": string(o.RegistryCA)}}))
		podSpec["volumes"] = []any{map[string]any{"name": "registry-ca", "configMap": map[string]any{"name": o.Name}}}
		container["volumeMounts"] = []any{map[string]any{"name": "registry-ca", "mountPath": dir, "readOnly": true}}
		args = append(args, "--ca-file", dir+"/ca.crt")
	}
	container["args"] = args
	podLabels := map[string]any{LabelAgent: o.Name}
	wh, err := Webhook(o.WebhookOptions)
	if err != nil {
		return nil, err
	}
	return append(extra,
		obj("v1", "ServiceAccount", true, nil),
		obj("rbac.authorization.k8s.io/v1", "Role", true, map[string]any{"rules": []any{
			map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets"}, "resourceNames": []any{o.Name}, "verbs": []any{"get", "update"}},
			map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets"}, "verbs": []any{"create"}},
		}}),
		obj("rbac.authorization.k8s.io/v1", "RoleBinding", true, map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": o.Name},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": o.Name, "namespace": o.Namespace}},
		}),
		obj("rbac.authorization.k8s.io/v1", "ClusterRole", false, map[string]any{"rules": []any{
			map[string]any{"apiGroups": []any{"admissionregistration.k8s.io"}, "resources": []any{"mutatingwebhookconfigurations"}, "resourceNames": []any{o.Name}, "verbs": []any{"get", "patch"}},
		}}),
		obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", false, map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": o.Name},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": o.Name, "namespace": o.Namespace}},
		}),
		obj("v1", "Service", true, map[string]any{"spec": map[string]any{
			"selector": podLabels,
			"ports":    []any{map[string]any{"name": "https", "port": int64(443), "targetPort": port}},
		}}),
		obj("apps/v1", "Deployment", true, map[string]any{"spec": map[string]any{
			"replicas": int64(replicas),
			"selector": map[string]any{"matchLabels": podLabels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": podLabels},
				"spec":     podSpec,
			},
		}}),
		wh,
	), nil
}

// InstallResult says what Install did.
type InstallResult struct {
	Objects []kube.ObjectRef
	// NamespaceCreated is true when the agent's namespace was created
	// (and is therefore removed by Uninstall).
	NamespaceCreated bool
}

// Install applies the agent to the cluster: its namespace when missing,
// RBAC, the certificate Secret (kept when it exists: the agent renews it),
// Service, Deployment, and the webhook configuration with the current CA
// bundle, so the API server trusts the agent from its first call.
func Install(ctx context.Context, kc *kube.Client, o InstallOptions) (*InstallResult, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if err := o.Cert.Check(); err != nil {
		return nil, err
	}
	if err := checkOwned(ctx, kc, o); err != nil {
		return nil, err
	}
	res := &InstallResult{}
	nsRef := kube.ObjectRef{Version: "v1", Kind: "Namespace", Name: o.Namespace}
	if _, err := kc.Get(ctx, nsRef); errors.Is(err, kube.ErrNotFound) {
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": o.Namespace}}}
		if _, err := kc.Apply(ctx, []*unstructured.Unstructured{ns}, kube.ApplyOptions{FieldManager: InstallFieldManager, Labels: Labels(o.Name)}); err != nil {
			return nil, err
		}
		res.NamespaceCreated = true
	} else if err != nil {
		return nil, err
	}
	store := &KubeStore{Client: kc, Namespace: o.Namespace, Secret: o.Name, Webhook: o.Name, Labels: Labels(o.Name)}
	st, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	if st == nil {
		co := o.Cert.withServiceNames(o.Name, o.Namespace)
		if o.HostNetwork != "" {
			ip, _, err := o.hostAddr()
			if err != nil {
				return nil, err
			}
			co.IPs = append(slices.Clone(co.IPs), ip)
		}
		cert, key, ca, err := Issue(co, time.Now())
		if err != nil {
			return nil, err
		}
		st = &CertState{Cert: cert, Key: key, CABundle: ca}
		if err := store.Save(ctx, st); err != nil {
			return nil, err
		}
	}
	o.CABundle = st.CABundle
	objs, err := Objects(o)
	if err != nil {
		return nil, err
	}
	// The webhook configuration goes last, once the agent can answer.
	ao := kube.ApplyOptions{FieldManager: InstallFieldManager, Namespace: o.Namespace, Force: true}
	refs, err := kc.Apply(ctx, objs[:len(objs)-1], ao)
	if err != nil {
		return nil, err
	}
	if o.Wait > 0 {
		dep := kube.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: o.Namespace, Name: o.Name}
		if err := kc.Wait(ctx, []kube.ObjectRef{dep}, kube.WaitOptions{Timeout: o.Wait}); err != nil {
			return nil, fmt.Errorf("agent not available, webhook not installed: %w: can the nodes pull %s? (kubectl -n %s describe deploy/%s)", err, o.Image, o.Namespace, o.Name)
		}
	}
	whRefs, err := kc.Apply(ctx, objs[len(objs)-1:], ao)
	if err != nil {
		return nil, err
	}
	res.Objects = append(append([]kube.ObjectRef{{Version: "v1", Kind: "Secret", Namespace: o.Namespace, Name: o.Name}}, refs...), whRefs...)
	return res, nil
}

// ErrNotOwned: an object agent install would write exists and is not
// the agent's.
var ErrNotOwned = errors.New("not the agent's")

// checkOwned refuses an install that would overwrite objects of the same
// names (the webhook configuration, RBAC, the certificate Secret, ...)
// that do not carry the agent's ownership labels: someone else's, never
// to be replaced or later removed by uninstall.
func checkOwned(ctx context.Context, kc *kube.Client, o InstallOptions) error {
	objs, err := Objects(o)
	if err != nil {
		return err
	}
	refs := []kube.ObjectRef{{Version: "v1", Kind: "Secret", Namespace: o.Namespace, Name: o.Name}}
	for _, obj := range objs {
		refs = append(refs, kube.RefOf(obj))
	}
	want := Labels(o.Name)
	var taken []string
	for _, ref := range refs {
		exists, ours, err := ownership(ctx, kc, ref, want)
		if err != nil {
			return err
		}
		if exists && !ours {
			taken = append(taken, ref.String())
		}
	}
	if len(taken) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s exist and were not made by skiff agent install for agent %s: nothing was changed; remove them, or install the agent under another --name (or --namespace)",
		ErrNotOwned, strings.Join(taken, ", "), o.Name)
}

// withServiceNames adds the in-cluster names of Service name in ns.
func (o CertOptions) withServiceNames(name, ns string) CertOptions {
	o.DNSNames = append(slices.Clone(o.DNSNames), name+"."+ns+".svc", name+"."+ns+".svc.cluster.local")
	return o
}

// ServiceNames are the serving certificate's names for Service name in ns.
func ServiceNames(name, ns string) []string {
	return CertOptions{}.withServiceNames(name, ns).DNSNames
}

// UninstallResult says what Uninstall removed and what it left because
// the ownership labels did not match.
type UninstallResult struct {
	Deleted, Skipped []kube.ObjectRef
}

// Uninstall removes everything Install created for agent name in ns: the
// webhook configuration first, so admission never points at a missing
// agent, then the rest, and the namespace only if Install created it. An
// object is deleted only when it carries the agent's ownership labels.
func Uninstall(ctx context.Context, kc *kube.Client, name, ns string) (*UninstallResult, error) {
	if name == "" {
		name = DefaultName
	}
	if ns == "" {
		ns = DefaultNamespace
	}
	refs := []kube.ObjectRef{
		{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration", Name: name},
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: ns, Name: name},
		{Version: "v1", Kind: "Service", Namespace: ns, Name: name},
		{Version: "v1", Kind: "Secret", Namespace: ns, Name: name},
		{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: name},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding", Name: name},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole", Name: name},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding", Namespace: ns, Name: name},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role", Namespace: ns, Name: name},
		{Version: "v1", Kind: "ServiceAccount", Namespace: ns, Name: name},
		{Version: "v1", Kind: "Namespace", Name: ns},
	}
	want := Labels(name)
	res := &UninstallResult{}
	for _, ref := range refs {
		exists, ours, err := ownership(ctx, kc, ref, want)
		if err != nil {
			return res, err
		}
		if !exists {
			continue
		}
		if !ours {
			res.Skipped = append(res.Skipped, ref)
			continue
		}
		// kube.Delete deletes in reverse order; one at a time keeps ours.
		if err := kc.Delete(ctx, []kube.ObjectRef{ref}, kube.DeleteOptions{}); err != nil {
			return res, err
		}
		res.Deleted = append(res.Deleted, ref)
	}
	return res, nil
}

// ownership reports whether the object ref exists and, if so, whether it
// carries the labels want.
func ownership(ctx context.Context, kc *kube.Client, ref kube.ObjectRef, want map[string]string) (exists, ours bool, err error) {
	obj, err := kc.Get(ctx, ref)
	if errors.Is(err, kube.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	labels := obj.GetLabels()
	for k, v := range want {
		if labels[k] != v {
			return true, false, nil
		}
	}
	return true, true, nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
