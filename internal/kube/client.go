// Package kube talks to a Kubernetes cluster: server-side apply of
// manifests, readiness waits (kstatus), deletion and pruning, a Lease based
// lock, and the Secrets that hold release records. It is the only package
// of skiff that imports k8s.io/client-go.
package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// Default client-side rate limits. client-go's own defaults (5 QPS, burst
// 10) make applying a few hundred objects crawl.
const (
	DefaultQPS   = 50
	DefaultBurst = 100
)

// Config selects the cluster to talk to.
type Config struct {
	// Kubeconfig is a kubeconfig file path. Empty means the usual loading
	// rules: $KUBECONFIG, then ~/.kube/config.
	Kubeconfig string
	// Context is the kubeconfig context to use; empty means the current one.
	Context string
	// QPS and Burst limit client-side request rates; zero means DefaultQPS
	// and DefaultBurst.
	QPS   float32
	Burst int
}

// Client is a connection to one cluster. It is safe for concurrent use.
type Client struct {
	rest      *rest.Config
	namespace string
	typed     kubernetes.Interface
	dynamic   dynamic.Interface
	discovery discovery.CachedDiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
}

// New connects to the cluster described by cfg. It does not contact the
// server; call ServerVersion to check reachability.
func New(cfg Config) (*Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.Kubeconfig != "" {
		rules.ExplicitPath = cfg.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w: point --kubeconfig or $KUBECONFIG at a valid kubeconfig", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	return NewForConfig(rc, ns, cfg.QPS, cfg.Burst)
}

// WithRateLimits sets DefaultQPS and DefaultBurst on a REST config made
// elsewhere (Helm's), which would otherwise get client-go's 5 QPS and
// burst of 10: a chart of a hundred objects then waits seconds on the
// client's own throttle. It fits genericclioptions' WrapConfigFn.
func WithRateLimits(rc *rest.Config) *rest.Config {
	rc.QPS, rc.Burst = DefaultQPS, DefaultBurst
	return rc
}

// NewForConfig builds a Client from a REST config. namespace is the default
// namespace reported by Namespace; empty means "default".
func NewForConfig(rc *rest.Config, namespace string, qps float32, burst int) (*Client, error) {
	rc = rest.CopyConfig(rc)
	if qps == 0 {
		qps = DefaultQPS
	}
	if burst == 0 {
		burst = DefaultBurst
	}
	rc.QPS, rc.Burst = qps, burst
	if rc.UserAgent == "" {
		rc.UserAgent = "skiff"
	}
	if namespace == "" {
		namespace = "default"
	}
	typed, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("creating kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("creating dynamic client: %w", err)
	}
	disc := memory.NewMemCacheClient(typed.Discovery())
	return &Client{
		rest:      rc,
		namespace: namespace,
		typed:     typed,
		dynamic:   dyn,
		discovery: disc,
		mapper:    restmapper.NewDeferredDiscoveryRESTMapper(disc),
	}, nil
}

// Namespace returns the default namespace of the kubeconfig context
// ("default" when the context names none).
func (c *Client) Namespace() string { return c.namespace }

// ServerVersion asks the API server for its version.
func (c *Client) ServerVersion(ctx context.Context) (*version.Info, error) {
	body, err := c.typed.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("contacting the API server at %s: %w: check that the cluster is reachable and the kubeconfig is right", c.rest.Host, err)
	}
	var info version.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("decoding server version: %w", err)
	}
	return &info, nil
}

// Contexts lists the context names of the kubeconfig (the file, or the
// usual loading rules when empty), sorted.
func Contexts(kubeconfig string) ([]string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	out := make([]string, 0, len(cfg.Contexts))
	for name := range cfg.Contexts {
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}
