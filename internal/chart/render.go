package chart

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
)

// RenderOptions tunes Render.
type RenderOptions struct {
	// ReleaseName defaults to the chart name.
	ReleaseName string
	// Namespace defaults to "default".
	Namespace string
	// Defaults are merged over the chart's values.yaml, as in
	// InstallOptions.
	Defaults map[string]any
	Values   map[string]any
	// KubeVersion is the Kubernetes version templates see (v1.35.0);
	// empty means Helm's default.
	KubeVersion string
	// APIVersions are extra API versions for .Capabilities.APIVersions.
	APIVersions []string
	// PostRender, if set, rewrites the rendered templates and hooks as it
	// would on Install (see InstallOptions.PostRender).
	PostRender func(manifest []byte) ([]byte, error)
}

// Rendered is the output of Render.
type Rendered struct {
	// Manifest holds every document: CRDs of the crds/ directories, the
	// templates of the chart and its subcharts, then the hooks, including
	// test hooks, each preceded by a "# Source:" comment.
	Manifest []byte
}

// Render templates the chart archive data offline, without a cluster, the
// way "helm template --include-crds" does, but with hooks and tests kept in
// the output so that all of their images can be discovered.
func Render(ctx context.Context, data []byte, opts RenderOptions) (*Rendered, error) {
	ch, err := load(data)
	if err != nil {
		return nil, err
	}
	withDefaults(ch, opts.Defaults)
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	cfg.KubeClient = &kubefake.PrintingKubeClient{Out: io.Discard}
	cfg.Releases = storage.Init(driver.NewMemory())

	inst := action.NewInstall(cfg)
	inst.DryRunStrategy = action.DryRunClient
	inst.Replace = true
	inst.IncludeCRDs = true
	inst.DisableOpenAPIValidation = true
	inst.ReleaseName = opts.ReleaseName
	if inst.ReleaseName == "" {
		inst.ReleaseName = ch.Name()
	}
	inst.Namespace = opts.Namespace
	if inst.Namespace == "" {
		inst.Namespace = "default"
	}
	if opts.KubeVersion != "" {
		kv, err := common.ParseKubeVersion(opts.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("render chart %s: kube version: %w", ch.Name(), err)
		}
		inst.KubeVersion = kv
	}
	inst.APIVersions = common.VersionSet(opts.APIVersions)
	if opts.PostRender != nil {
		inst.PostRenderer = postRenderer(opts.PostRender)
		inst.PostRenderStrategy = action.PostRenderStrategyCombined
	}

	vals := copyMap(opts.Values)
	if vals == nil {
		vals = map[string]any{}
	}
	r, err := inst.RunWithContext(ctx, ch, vals)
	if err != nil {
		return nil, fmt.Errorf("render chart %s: %w", ch.Name(), err)
	}
	rel, ok := r.(*release.Release)
	if !ok {
		return nil, fmt.Errorf("render chart %s: unexpected release type %T", ch.Name(), r)
	}
	var b strings.Builder
	b.WriteString(rel.Manifest)
	for _, h := range rel.Hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return &Rendered{Manifest: []byte(b.String())}, nil
}

// KubeVersion normalizes a Kubernetes version (1.35, v1.35.4) to the form
// templates see (v1.35, v1.35.4); empty means the version Helm renders for
// by default.
func KubeVersion(v string) (string, error) {
	if v == "" {
		return common.DefaultCapabilities.KubeVersion.Version, nil
	}
	kv, err := common.ParseKubeVersion(v)
	if err != nil {
		return "", fmt.Errorf("kubernetes version %q: %w: use MAJOR.MINOR[.PATCH], like 1.35", v, err)
	}
	return kv.Version, nil
}

// KubeMinor returns MAJOR.MINOR of a Kubernetes version (1.35 for
// v1.35.4-gke.1): what selects images in charts that pick them by
// version.
func KubeMinor(v string) (string, error) {
	kv, err := common.ParseKubeVersion(v)
	if err != nil {
		return "", fmt.Errorf("kubernetes version %q: %w", v, err)
	}
	return kv.Major + "." + kv.Minor, nil
}
