package install

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// cluster is what the lifecycle needs of the Kubernetes API; *kube.Client
// implements it, and the unit tests a fake in memory.
type cluster interface {
	Refs(objs []*unstructured.Unstructured, ns string) ([]kube.ObjectRef, error)
	Apply(ctx context.Context, objs []*unstructured.Unstructured, o kube.ApplyOptions) ([]kube.ObjectRef, error)
	Wait(ctx context.Context, refs []kube.ObjectRef, o kube.WaitOptions) error
	Delete(ctx context.Context, refs []kube.ObjectRef, o kube.DeleteOptions) error
	Prune(ctx context.Context, old, keep []kube.ObjectRef, o kube.DeleteOptions) ([]kube.ObjectRef, error)
	Get(ctx context.Context, ref kube.ObjectRef) (*unstructured.Unstructured, error)
	Status(ctx context.Context, ref kube.ObjectRef) kube.ObjectStatus
	Explain(ctx context.Context, sts []kube.ObjectStatus)
	EnsureNamespace(ctx context.Context, name string) error
	NamespaceObjects(ctx context.Context, ns string) ([]*unstructured.Unstructured, error)
	ResolveRef(ctx context.Context, s, ns string) (kube.ObjectRef, error)
	Lock(ctx context.Context, namespace, name, holder string, ttl time.Duration) (func(context.Context) error, error)
	ServerVersion(ctx context.Context) (*version.Info, error)
	List(ctx context.Context, gvk schema.GroupVersionKind, ns, selector string) ([]unstructured.Unstructured, error)
	PodLogs(ctx context.Context, ns, pod, container string, tailLines int64) ([]byte, error)
}

// releaser installs charts as Helm releases; *chart.Client implements it.
type releaser interface {
	Get(ctx context.Context, name, namespace string) (*chart.Release, error)
	Install(ctx context.Context, data []byte, o chart.InstallOptions) (*chart.Release, error)
	Upgrade(ctx context.Context, data []byte, o chart.UpgradeOptions) (*chart.Release, error)
	Rollback(ctx context.Context, name, namespace string, revision int, o chart.RollbackOptions) error
	Uninstall(ctx context.Context, name, namespace string, o chart.UninstallOptions) error
	Values(ctx context.Context, name, namespace string, revision int) (map[string]any, error)
	Test(ctx context.Context, name, namespace string, o chart.TestOptions) ([]chart.TestHook, error)
}

// backend is a connection to one cluster: its API, its Helm releases and
// Skiff's records.
type backend struct {
	kube    cluster
	charts  releaser
	records release.Driver
}

// connect returns c's backend (the one a test set, or a connection to the
// cluster c names); Helm operations default to namespace ns.
func (c Cluster) connect(ns string, o *Options) (*backend, error) {
	if c.backend != nil {
		return c.backend, nil
	}
	kc, err := kube.New(kube.Config{Kubeconfig: c.Kubeconfig, Context: c.Context})
	if err != nil {
		return nil, err
	}
	cc, err := chart.NewClient(chart.Config{Kubeconfig: c.Kubeconfig, Context: c.Context, Namespace: ns})
	if err != nil {
		return nil, err
	}
	if o != nil && o.Logger != nil {
		cc = cc.WithLogger(o.Logger.Handler())
	}
	return &backend{kube: kc, charts: cc, records: release.NewSecrets(kc)}, nil
}

// store returns the release store of b.
func (b *backend) store(maxHistory int) *release.Store {
	return release.NewStore(b.records, release.StoreOptions{MaxHistory: maxHistory})
}
