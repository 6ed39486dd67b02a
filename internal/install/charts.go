package install

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/oci"
)

// ChartPush reports one chart that Load pushed as an OCI Helm chart.
type ChartPush struct {
	// Name is the component name; Chart the chart's own name.
	Name    string `json:"name"`
	Chart   string `json:"chart"`
	Version string `json:"version"`
	// Ref is oci://HOST/PREFIX/charts/CHART:TAG, what helm install takes
	// (with --version VERSION).
	Ref string `json:"ref"`
	// Images counts the chart values pointed at relocated images.
	Images int `json:"images"`
}

// ChartRepository is where Load pushes the charts of a package:
// HOST/PREFIX/charts.
func ChartRepository(dest images.Destination) string {
	r := dest.Host
	if dest.Prefix != "" {
		r += "/" + strings.Trim(dest.Prefix, "/")
	}
	return r + "/charts"
}

// pushCharts pushes every chart of p to ChartRepository(dest)/CHART,
// tagged with the chart version ("+" written "_", as helm push does), with
// Helm's media types. Each chart's default values are the package's values
// for it with every value that names an image of the package (its
// imageValues, and any string or {registry, repository, tag} mapping
// spelling one) pointed at the relocated image: helm install oci://…, a
// Flux HelmRelease or an Argo CD Application then pull from the site
// registry without extra values. Images a chart hard-codes in its
// templates cannot be changed this way; skiff install relocates those
// when it renders.
func pushCharts(ctx context.Context, p *Package, dest images.Destination, m images.Map, o LoadOptions) ([]ChartPush, *oci.PushResult, error) {
	if len(p.Description.Charts) == 0 {
		return nil, &oci.PushResult{}, nil
	}
	store := memory.New()
	repo := ChartRepository(dest)
	var (
		out  []ChartPush
		push []oci.PushImage
	)
	for _, c := range p.Description.Charts {
		data, err := readLayer(ctx, p, c.Digest, c.Size, bundle.MediaTypeChart)
		if err != nil {
			return nil, nil, err
		}
		rel, n, err := relocatedChart(c, data, m)
		if err != nil {
			return nil, nil, err
		}
		oc, err := chart.OCI(rel)
		if err != nil {
			return nil, nil, fmt.Errorf("chart %s: %w", c.Name, err)
		}
		man, err := chartManifest(ctx, store, oc, rel)
		if err != nil {
			return nil, nil, fmt.Errorf("chart %s: %w", c.Name, err)
		}
		tag := strings.ReplaceAll(oc.Version, "+", "_")
		target := repo + "/" + oc.Name + ":" + tag
		push = append(push, oci.PushImage{Descriptor: man, Target: target})
		out = append(out, ChartPush{Name: c.Name, Chart: oc.Name, Version: oc.Version, Ref: "oci://" + target, Images: n})
	}
	res, err := oci.Push(ctx, store, push, oci.PushOptions{RemoteOptions: o.Remote, Concurrency: o.Concurrency, Progress: o.Progress})
	if err != nil {
		return nil, nil, fmt.Errorf("pushing charts: %w", err)
	}
	return out, res, nil
}

// loadCharts pushes the charts and adds what moved to res.
func loadCharts(ctx context.Context, p *Package, dest images.Destination, m images.Map, o LoadOptions, res *oci.PushResult) ([]ChartPush, error) {
	charts, cres, err := pushCharts(ctx, p, dest, m, o)
	if err != nil {
		return nil, err
	}
	res.BlobsPushed += cres.BlobsPushed
	res.BlobsSkipped += cres.BlobsSkipped
	res.BlobsMounted += cres.BlobsMounted
	res.BytesPushed += cres.BytesPushed
	res.BytesSkipped += cres.BytesSkipped
	res.ManifestsPushed += cres.ManifestsPushed
	return charts, nil
}

// relocatedChart returns the chart archive data with the package's values
// for c, and its image values relocated by m, as its defaults; and how
// many values name images.
func relocatedChart(c bundle.Chart, data []byte, m images.Map) ([]byte, int, error) {
	vals, err := chartValues(c, nil)
	if err != nil {
		return nil, 0, err
	}
	if vals == nil {
		vals = map[string]any{}
	}
	defaults, err := chart.Defaults(data)
	if err != nil {
		return nil, 0, fmt.Errorf("chart %s: %w", c.Name, err)
	}
	// The shape the chart renders with: its defaults under the package's values.
	shape := chart.MergeMaps(defaults, vals)
	iv := images.ValuePaths(shape, m)
	for k, v := range c.ImageValues { // declared paths win
		iv[k] = v
	}
	for k := range iv {
		if _, ok := c.ImageValues[k]; !ok && covered(k, c.ImageValues) {
			delete(iv, k)
		}
	}
	if err := images.SetValues(vals, shape, iv, m); err != nil {
		return nil, 0, fmt.Errorf("chart %s: %w", c.Name, err)
	}
	out, err := chart.WithDefaults(data, vals)
	if err != nil {
		return nil, 0, fmt.Errorf("chart %s: %w", c.Name, err)
	}
	return out, len(iv), nil
}

// covered reports whether path is below or above a declared image value
// path (which then decides).
func covered(path string, declared map[string]string) bool {
	for d := range declared {
		if strings.HasPrefix(path, d+".") || strings.HasPrefix(d, path+".") {
			return true
		}
	}
	return false
}

// chartManifest stores the chart as helm push would (config = Chart.yaml
// as JSON, one chart layer) and returns the manifest's descriptor.
func chartManifest(ctx context.Context, s *memory.Store, oc *chart.OCIChart, data []byte) (ocispec.Descriptor, error) {
	cfg := content.NewDescriptorFromBytes(chart.OCIConfigMediaType, oc.Config)
	layer := content.NewDescriptorFromBytes(chart.OCILayerMediaType, data)
	raw, err := json.Marshal(ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      cfg,
		Layers:      []ocispec.Descriptor{layer},
		Annotations: oc.Annotations,
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	man := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, raw)
	for _, b := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{cfg, oc.Config}, {layer, data}, {man, raw}} {
		if ok, _ := s.Exists(ctx, b.d); ok {
			continue
		}
		if err := s.Push(ctx, b.d, strings.NewReader(string(b.data))); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	return man, nil
}
