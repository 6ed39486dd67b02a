package chart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	ri "helm.sh/helm/v4/pkg/release"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	skube "github.com/skiffhq/skiff/internal/kube"
)

// ErrReleaseNotFound is matched (errors.Is) when a release does not exist.
var ErrReleaseNotFound = errors.New("release not found")

// DefaultTimeout bounds waits and hooks when an options Timeout is zero.
const DefaultTimeout = 5 * time.Minute

// Config selects the cluster a Client talks to.
type Config struct {
	// Kubeconfig is a kubeconfig path; empty means the usual lookup
	// ($KUBECONFIG, ~/.kube/config, in-cluster).
	Kubeconfig string
	// Context is a kubeconfig context; empty means the current one.
	Context string
	// Namespace is used when an operation's namespace is empty; empty
	// means the context's namespace.
	Namespace string
	// CacheDir holds the discovery cache; empty means kubectl's
	// ($KUBECACHEDIR or ~/.kube/cache).
	CacheDir string
}

// Client installs and manages Helm releases in one cluster. Releases are
// stored as Secrets (Helm's default driver), resources are applied with
// server-side apply, and waits use kstatus.
type Client struct {
	cfg Config
	// logger receives Helm's own logging; discarded unless set.
	logger slog.Handler
}

// NewClient returns a Client for cfg. It does not contact the cluster.
func NewClient(cfg Config) (*Client, error) {
	return &Client{cfg: cfg, logger: slog.DiscardHandler}, nil
}

// WithLogger returns a copy of c that sends Helm's logs to h.
func (c *Client) WithLogger(h slog.Handler) *Client {
	cc := *c
	if h == nil {
		h = slog.DiscardHandler
	}
	cc.logger = h
	return &cc
}

// Release describes one revision of a release.
type Release struct {
	Name      string
	Namespace string
	Revision  int
	// Status is Helm's status: deployed, failed, pending-install, ...
	Status string
	// Manifest is the applied manifest, without hooks.
	Manifest string
	// CRDs names the CustomResourceDefinitions the release brought: those
	// of the charts' crds/ directories and those among the templates.
	CRDs []string
}

// InstallOptions tunes Install.
type InstallOptions struct {
	Release   string
	Namespace string
	// Defaults are merged over the chart's own values.yaml and become the
	// chart's defaults (a package's values for the chart); Helm's release
	// then stores only Values, the values this operation was given.
	Defaults map[string]any
	Values   map[string]any
	// PostRender rewrites the rendered manifest (for example to relocate
	// images) before it is applied. Helm v4 hands it the templates and the
	// hooks, test hooks included, of the chart and its subcharts together
	// as one multi-document stream. Every document carries a
	// postrenderer.helm.sh/postrender-filename annotation that must be
	// kept. CRDs of crds/ directories are not post-rendered: Helm applies
	// them as they are.
	PostRender func(manifest []byte) ([]byte, error)
	// Wait waits until all resources are ready (kstatus); hooks are
	// always waited for.
	Wait bool
	// Timeout bounds waiting and each hook; zero means DefaultTimeout.
	Timeout         time.Duration
	CreateNamespace bool
	// DryRun renders and validates against the cluster (server-side dry
	// run) without changing anything. Helm does not create the chart's
	// CRDs then, so custom resources of a chart whose CRDs are not in the
	// cluster yet fail the dry run.
	DryRun bool
}

// UpgradeOptions tunes Upgrade.
type UpgradeOptions struct {
	Release   string
	Namespace string
	// Defaults are as in InstallOptions.
	Defaults map[string]any
	Values   map[string]any
	// ReuseValues keeps the values the current revision was given, with
	// Values over them. Otherwise the release gets exactly Values (over
	// the chart's defaults): Helm's implicit reuse of the previous values
	// when none are given never happens.
	ReuseValues bool
	PostRender  func(manifest []byte) ([]byte, error)
	Wait        bool
	Timeout     time.Duration
	DryRun      bool
	// MaxHistory limits the revisions kept; zero keeps all.
	MaxHistory int
	// ApplyCRDs applies the CRDs of the chart's crds/ directories with
	// server-side apply before upgrading. Helm itself installs crds/ only
	// on install and never creates or updates them on upgrade.
	ApplyCRDs bool
}

// RollbackOptions tunes Rollback.
type RollbackOptions struct {
	Wait       bool
	Timeout    time.Duration
	MaxHistory int
}

// UninstallOptions tunes Uninstall.
type UninstallOptions struct {
	// KeepHistory keeps the release records, marked uninstalled.
	KeepHistory bool
	// KeepHooks leaves the hook objects (Jobs, ServiceAccounts, test
	// Pods, ...) that Helm's own uninstall leaves behind; by default they
	// are deleted too.
	KeepHooks bool
	Wait      bool
	Timeout   time.Duration
}

// action returns a Helm configuration bound to namespace.
func (c *Client) action(namespace string) (*action.Configuration, string, error) {
	if namespace == "" {
		namespace = c.cfg.Namespace
	}
	flags := genericclioptions.NewConfigFlags(true)
	if c.cfg.Kubeconfig != "" {
		flags.KubeConfig = &c.cfg.Kubeconfig
	}
	if c.cfg.Context != "" {
		flags.Context = &c.cfg.Context
	}
	if c.cfg.CacheDir != "" {
		flags.CacheDir = &c.cfg.CacheDir
	}
	if namespace == "" {
		ns, _, err := flags.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil, "", fmt.Errorf("kubeconfig: %w", err)
		}
		namespace = ns
	}
	flags.Namespace = &namespace
	// skiff's rate limits, not client-go's 5 QPS (the helm command sets a
	// burst of 100 for the same reason)
	flags.WrapConfigFn = skube.WithRateLimits
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(c.logger))
	if err := cfg.Init(flags, namespace, "secret"); err != nil {
		return nil, "", fmt.Errorf("kubernetes client: %w", err)
	}
	return cfg, namespace, nil
}

// postRenderer adapts a PostRender function to Helm's
// postrenderer.PostRenderer.
type postRenderer func([]byte) ([]byte, error)

func (f postRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	out, err := f(in.Bytes())
	if err != nil {
		return nil, err
	}
	return bytes.NewBuffer(out), nil
}

func waitStrategy(wait bool) kube.WaitStrategy {
	if wait {
		return kube.StatusWatcherStrategy
	}
	return kube.HookOnlyStrategy
}

func timeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// Install installs the chart archive data as a new release. CRDs in the
// chart's crds/ directories are applied first and waited for.
func (c *Client) Install(ctx context.Context, data []byte, o InstallOptions) (*Release, error) {
	ch, err := load(data)
	if err != nil {
		return nil, err
	}
	withDefaults(ch, o.Defaults)
	cfg, ns, err := c.action(o.Namespace)
	if err != nil {
		return nil, err
	}
	inst := action.NewInstall(cfg)
	if !o.DryRun {
		// The CRDs at once, and until discovery serves them: Helm creates
		// them one by one and trusts Established, after which a custom
		// resource of the chart can still find no REST mapping.
		if err := applyCRDs(cfg, ch, false); err != nil {
			return nil, fmt.Errorf("install release %s in %s: %w", o.Release, ns, err)
		}
		inst.SkipCRDs = true
	}
	// Helm's client-side validation fetches and parses the cluster's
	// OpenAPI documents on every install (a third of install's CPU for a
	// chart of 135 objects); the API server validates each object anyway
	// (server-side apply with strict field validation). Upgrades keep it:
	// there it refuses an invalid chart before anything changes.
	inst.DisableOpenAPIValidation = true
	inst.ReleaseName = o.Release
	inst.Namespace = ns
	inst.CreateNamespace = o.CreateNamespace
	inst.WaitStrategy = waitStrategy(o.Wait)
	inst.Timeout = timeout(o.Timeout)
	inst.PostRenderStrategy = action.PostRenderStrategyCombined
	if o.PostRender != nil {
		inst.PostRenderer = postRenderer(o.PostRender)
	}
	if o.DryRun {
		inst.DryRunStrategy = action.DryRunServer
	}
	r, err := inst.RunWithContext(ctx, ch, valuesOrEmpty(o.Values))
	if err != nil {
		return nil, fmt.Errorf("install release %s in %s: %w", o.Release, ns, err)
	}
	return toRelease(r)
}

// Upgrade upgrades an existing release to the chart archive data. Helm
// does not create or update the CRDs of crds/ directories on upgrade (new
// CRDs of a newer chart version are missing afterwards); set
// o.ApplyCRDs to server-side apply them first.
func (c *Client) Upgrade(ctx context.Context, data []byte, o UpgradeOptions) (*Release, error) {
	ch, err := load(data)
	if err != nil {
		return nil, err
	}
	cfg, ns, err := c.action(o.Namespace)
	if err != nil {
		return nil, err
	}
	if o.ApplyCRDs && !o.DryRun {
		if err := applyCRDs(cfg, ch, true); err != nil {
			return nil, fmt.Errorf("upgrade release %s in %s: %w", o.Release, ns, err)
		}
	}
	withDefaults(ch, o.Defaults)
	up := action.NewUpgrade(cfg)
	up.Namespace = ns
	up.ResetValues = !o.ReuseValues
	up.ResetThenReuseValues = o.ReuseValues
	up.WaitStrategy = waitStrategy(o.Wait)
	up.Timeout = timeout(o.Timeout)
	up.MaxHistory = o.MaxHistory
	up.PostRenderStrategy = action.PostRenderStrategyCombined
	if o.PostRender != nil {
		up.PostRenderer = postRenderer(o.PostRender)
	}
	if o.DryRun {
		up.DryRunStrategy = action.DryRunServer
	}
	r, err := up.RunWithContext(ctx, o.Release, ch, valuesOrEmpty(o.Values))
	if errors.Is(err, driver.ErrNoDeployedReleases) {
		if h, herr := cfg.Releases.History(o.Release); herr == nil && len(h) > 0 {
			return nil, fmt.Errorf("upgrade release %s in %s: no revision is deployed: roll back to a good revision or uninstall it: %w", o.Release, ns, err)
		}
		return nil, fmt.Errorf("upgrade release %s in %s: %w: %w", o.Release, ns, ErrReleaseNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("upgrade release %s in %s: %w", o.Release, ns, notFound(err))
	}
	return toRelease(r)
}

// applyCRDs server-side applies the CRDs of ch (in parallel), waits until
// they are established and discovery serves their kinds, and then forgets
// what Helm's clients had discovered, so that the chart's custom resources
// map. force takes over fields other managers own (upgrade); install does
// not, as Helm's own install of crds/ does not.
func applyCRDs(cfg *action.Configuration, ch *chartv2.Chart, force bool) error {
	var all kube.ResourceList
	for _, crd := range ch.CRDObjects() {
		if crd.File == nil || len(crd.File.Data) == 0 {
			continue
		}
		res, err := cfg.KubeClient.Build(bytes.NewReader(crd.File.Data), false)
		if err != nil {
			return fmt.Errorf("apply CRDs: %s: %w", crd.Filename, err)
		}
		all = append(all, res...)
	}
	if len(all) == 0 {
		return nil
	}
	if _, err := cfg.KubeClient.Create(all, kube.ClientCreateOptionServerSideApply(true, force)); err != nil {
		return fmt.Errorf("apply CRDs: %w", err)
	}
	w, err := cfg.KubeClient.GetWaiter(kube.StatusWatcherStrategy)
	if err != nil {
		return fmt.Errorf("apply CRDs: %w", err)
	}
	if err := w.Wait(all, time.Minute); err != nil {
		return fmt.Errorf("apply CRDs: wait: %w", err)
	}
	if err := waitDiscovered(cfg, all, time.Minute); err != nil {
		return fmt.Errorf("apply CRDs: %w", err)
	}
	return nil
}

// waitDiscovered polls discovery until it serves every served version of
// the CRDs crds (Established comes first: the API server's discovery
// document follows asynchronously), then resets Helm's REST mapper.
func waitDiscovered(cfg *action.Configuration, crds kube.ResourceList, timeout time.Duration) error {
	type want struct{ gv, plural string }
	var wants []want
	for _, info := range crds {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(info.Object)
		if err != nil {
			return err
		}
		group, _, _ := unstructured.NestedString(u, "spec", "group")
		plural, _, _ := unstructured.NestedString(u, "spec", "names", "plural")
		versions, _, _ := unstructured.NestedSlice(u, "spec", "versions")
		for _, v := range versions {
			m, _ := v.(map[string]any)
			if name, _ := m["name"].(string); name != "" && m["served"] == true {
				wants = append(wants, want{gv: group + "/" + name, plural: plural})
			}
		}
	}
	dc, err := cfg.RESTClientGetter.ToDiscoveryClient()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for len(wants) > 0 {
		dc.Invalidate()
		served := map[string]map[string]bool{}
		wants = slices.DeleteFunc(wants, func(w want) bool {
			if served[w.gv] == nil {
				served[w.gv] = map[string]bool{}
				if l, err := dc.ServerResourcesForGroupVersion(w.gv); err == nil {
					for _, r := range l.APIResources {
						served[w.gv][r.Name] = true
					}
				}
			}
			return served[w.gv][w.plural]
		})
		if len(wants) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("discovery does not serve %s %s after %s", wants[0].gv, wants[0].plural, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dc.Invalidate()
	m, err := cfg.RESTClientGetter.ToRESTMapper()
	if err != nil {
		return err
	}
	if r, ok := m.(meta.ResettableRESTMapper); ok {
		r.Reset()
	}
	return nil
}

// Rollback rolls release back to revision (0 means the previous one),
// which creates a new revision.
func (c *Client) Rollback(ctx context.Context, name, namespace string, revision int, o RollbackOptions) error {
	cfg, ns, err := c.action(namespace)
	if err != nil {
		return err
	}
	rb := action.NewRollback(cfg)
	rb.Version = revision
	rb.WaitStrategy = waitStrategy(o.Wait)
	rb.Timeout = timeout(o.Timeout)
	rb.MaxHistory = o.MaxHistory
	if err := runCtx(ctx, func() error { return rb.Run(name) }); err != nil {
		return fmt.Errorf("rollback release %s in %s: %w", name, ns, notFound(err))
	}
	return nil
}

// Uninstall deletes release and its resources.
func (c *Client) Uninstall(ctx context.Context, name, namespace string, o UninstallOptions) error {
	cfg, ns, err := c.action(namespace)
	if err != nil {
		return err
	}
	var hooks []*release.Hook
	if !o.KeepHooks {
		if last, err := cfg.Releases.Last(name); err == nil {
			if rel, ok := last.(*release.Release); ok && rel != nil {
				hooks = rel.Hooks
			}
		}
	}
	un := action.NewUninstall(cfg)
	un.KeepHistory = o.KeepHistory
	un.WaitStrategy = waitStrategy(o.Wait)
	un.Timeout = timeout(o.Timeout)
	if err := runCtx(ctx, func() error { _, err := un.Run(name); return err }); err != nil {
		return fmt.Errorf("uninstall release %s in %s: %w", name, ns, notFound(err))
	}
	if err := deleteHooks(cfg, hooks, o); err != nil {
		return fmt.Errorf("uninstall release %s in %s: %w", name, ns, err)
	}
	return nil
}

// deleteHooks deletes the objects of a release's hooks that are still
// there (before-hook-creation ones, succeeded test pods, ...): Helm's
// uninstall leaves them, and nothing else would ever remove them.
func deleteHooks(cfg *action.Configuration, hooks []*release.Hook, o UninstallOptions) error {
	var all kube.ResourceList
	for _, h := range hooks {
		if strings.TrimSpace(h.Manifest) == "" {
			continue
		}
		res, err := cfg.KubeClient.Build(strings.NewReader(h.Manifest), false)
		if err != nil {
			return fmt.Errorf("hook %s: %w", h.Path, err)
		}
		all = append(all, res...)
	}
	if len(all) == 0 {
		return nil
	}
	// Helm ignores objects that are already gone.
	if _, errs := cfg.KubeClient.Delete(all, metav1.DeletePropagationForeground); len(errs) > 0 {
		return fmt.Errorf("deleting hook objects: %w", errors.Join(errs...))
	}
	if !o.Wait {
		return nil
	}
	w, err := cfg.KubeClient.GetWaiter(kube.StatusWatcherStrategy)
	if err != nil {
		return err
	}
	if err := w.WaitForDelete(all, timeout(o.Timeout)); err != nil {
		return fmt.Errorf("waiting for hook objects to go: %w", err)
	}
	return nil
}

// withDefaults merges defaults over the values.yaml of ch.
func withDefaults(ch *chartv2.Chart, defaults map[string]any) {
	if len(defaults) > 0 {
		ch.Values = MergeMaps(ch.Values, copyMap(defaults))
	}
}

// Values returns the values revision of release was given (Helm's
// `get values`); revision 0 means the latest.
func (c *Client) Values(ctx context.Context, name, namespace string, revision int) (map[string]any, error) {
	cfg, ns, err := c.action(namespace)
	if err != nil {
		return nil, err
	}
	var vals map[string]any
	err = runCtx(ctx, func() error {
		gv := action.NewGetValues(cfg)
		gv.Version = revision
		var err error
		vals, err = gv.Run(name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("values of release %s in %s: %w", name, ns, notFound(err))
	}
	return vals, nil
}

// Get returns the latest revision of release.
func (c *Client) Get(ctx context.Context, name, namespace string) (*Release, error) {
	cfg, ns, err := c.action(namespace)
	if err != nil {
		return nil, err
	}
	var r ri.Releaser
	err = runCtx(ctx, func() error {
		var err error
		r, err = action.NewGet(cfg).Run(name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get release %s in %s: %w", name, ns, notFound(err))
	}
	return toRelease(r)
}

// runCtx runs f, an action that takes no context, and returns early with
// ctx's error when ctx is done first. f then finishes in the background.
func runCtx(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func notFound(err error) error {
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("%w: %w", ErrReleaseNotFound, err)
	}
	return err
}

func valuesOrEmpty(v map[string]any) map[string]any {
	if v == nil {
		return map[string]any{}
	}
	return copyMap(v)
}

func toRelease(r ri.Releaser) (*Release, error) {
	rel, ok := r.(*release.Release)
	if !ok || rel == nil {
		return nil, fmt.Errorf("unexpected release type %T", r)
	}
	out := &Release{
		Name:      rel.Name,
		Namespace: rel.Namespace,
		Revision:  rel.Version,
		Manifest:  rel.Manifest,
	}
	if rel.Info != nil {
		out.Status = rel.Info.Status.String()
	}
	out.CRDs = crdNames(rel)
	return out, nil
}

// TestOptions tunes Test.
type TestOptions struct {
	// Timeout bounds each test hook; zero means DefaultTimeout.
	Timeout time.Duration
	// Logs, when set, receives the logs of the test pods.
	Logs io.Writer
}

// TestHook is the outcome of one test hook.
type TestHook struct {
	Name string
	Kind string
	// Phase is Helm's hook phase: Succeeded, Failed, Running or Unknown.
	Phase string
}

// Test runs the test hooks (helm.sh/hook: test) of the latest revision of
// release, as `helm test` does, and reports each. A failed hook is an
// error; the hooks run so far are reported with it.
func (c *Client) Test(ctx context.Context, name, namespace string, o TestOptions) ([]TestHook, error) {
	cfg, ns, err := c.action(namespace)
	if err != nil {
		return nil, err
	}
	rt := action.NewReleaseTesting(cfg)
	rt.Namespace = ns
	rt.Timeout = timeout(o.Timeout)
	var r ri.Releaser
	var shutdown action.ExecuteShutdownFunc
	runErr := runCtx(ctx, func() error {
		var err error
		r, shutdown, err = rt.Run(name)
		return err
	})
	var out []TestHook
	if rel, ok := r.(*release.Release); ok && rel != nil {
		for _, h := range rel.Hooks {
			if !slices.Contains(h.Events, release.HookTest) {
				continue
			}
			out = append(out, TestHook{Name: h.Name, Kind: h.Kind, Phase: h.LastRun.Phase.String()})
		}
		if o.Logs != nil && ctx.Err() == nil {
			_ = rt.GetPodLogs(o.Logs, rel)
		}
	}
	if shutdown != nil && !errors.Is(runErr, context.Canceled) && !errors.Is(runErr, context.DeadlineExceeded) {
		if err := shutdown(); err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr != nil {
		return out, fmt.Errorf("test release %s in %s: %w", name, ns, notFound(runErr))
	}
	return out, nil
}

// FieldManager is the server-side apply field manager Helm applies
// release objects with (the program's name unless Helm was told one).
func FieldManager() string {
	if kube.ManagedFieldsManager != "" {
		return kube.ManagedFieldsManager
	}
	if os.Args[0] == "" {
		return "unknown"
	}
	return filepath.Base(os.Args[0])
}

// ReleaseMetadata are the labels and annotations Helm puts on every object
// of a release.
func ReleaseMetadata(release, namespace string) (labels, annotations map[string]string) {
	return map[string]string{"app.kubernetes.io/managed-by": "Helm"},
		map[string]string{"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}
}

// crdNames lists the CRDs of rel's charts' crds/ directories and of its
// manifest.
func crdNames(rel *release.Release) []string {
	var docs []string
	if rel.Chart != nil {
		for _, crd := range rel.Chart.CRDObjects() {
			if crd.File != nil {
				docs = append(docs, string(crd.File.Data))
			}
		}
	}
	docs = append(docs, rel.Manifest)
	var names []string
	for _, d := range docs {
		for _, doc := range releaseutil.SplitManifests(d) {
			var m struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if yaml.Unmarshal([]byte(doc), &m) != nil || m.Kind != "CustomResourceDefinition" || !strings.HasPrefix(m.APIVersion, "apiextensions.k8s.io/") {
				continue
			}
			if !slices.Contains(names, m.Metadata.Name) {
				names = append(names, m.Metadata.Name)
			}
		}
	}
	return names
}
