package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/manifest"
	"github.com/skiffhq/skiff/internal/spec"
)

// PlanOptions configure [NewPlan].
type PlanOptions struct {
	Spec    string
	Version string
	// KubeVersion overrides the spec's kubeVersion: the Kubernetes version
	// charts are rendered for.
	KubeVersion string
	Platforms   []string
	Set         []string
	Chart       chart.FetchOptions
	Progress    func(Event)
}

// Plan is everything a build needs except the image content: the spec,
// the fetched charts with their values and rendered output, the manifest
// sets, and the full image list. `skiff lint` stops here.
type Plan struct {
	Spec      *spec.Spec
	Platforms []string
	// KubeVersion is the Kubernetes version charts were rendered for.
	KubeVersion string
	Charts      []PlannedChart
	Manifests   []PlannedManifests
	// Images are the normalized references of every image to carry:
	// declared ones, those mapped to chart values, and those discovered in
	// charts and manifests.
	Images []string
	// Unreferenced are the carried images that no manifest names and no
	// chart value is mapped to: nodes reach them only through a mirror or
	// the admission agent. lint shows them as a hint.
	Unreferenced []string
}

// PlannedChart is a fetched and rendered chart.
type PlannedChart struct {
	Name string
	// ReleaseName is the spec's releaseName (may be empty).
	ReleaseName string
	Namespace   string
	Archive     *chart.Archive
	Values      map[string]any
	Rendered    []byte
	Images      []string
	// ImageValues are the chart's value paths mapped to normalized image
	// references.
	ImageValues map[string]string
}

// PlannedManifests is one collected manifest set.
type PlannedManifests struct {
	Name      string
	Namespace string
	YAML      []byte
	Images    []string
}

// NewPlan loads the spec, fetches and renders charts offline, collects
// manifests and discovers their images.
func NewPlan(ctx context.Context, o PlanOptions) (*Plan, error) {
	path := o.Spec
	if path == "" {
		path = "."
	}
	s, err := spec.Load(path)
	if err != nil {
		return nil, err
	}
	if o.Version != "" {
		if err := checkVersion(o.Version); err != nil {
			return nil, err
		}
		s.Metadata.Version = o.Version
	}
	p := &Plan{Spec: s, Platforms: s.Platforms}
	kv := s.KubeVersion
	if o.KubeVersion != "" {
		kv = o.KubeVersion
	}
	if p.KubeVersion, err = chart.KubeVersion(kv); err != nil {
		return nil, err
	}
	if len(o.Platforms) > 0 {
		p.Platforms = o.Platforms
	}
	sets, err := splitSets(o.Set, s)
	if err != nil {
		return nil, err
	}
	all := map[string]bool{}
	for _, ref := range s.Images {
		n, err := images.Normalize(ref)
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		all[n] = true
	}
	referenced := map[string]bool{}
	for _, c := range s.Charts {
		emit(o.Progress, Event{Stage: "chart", Message: "fetching chart " + c.Name})
		src := chart.Source{Chart: c.Chart, Version: c.Version, Repo: c.Repo}
		if c.Path != "" {
			src.Path = spec.Resolve(s, c.Path)
		}
		arc, err := chart.Fetch(ctx, src, o.Chart)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", c.Name, err)
		}
		var files [][]byte
		for _, vf := range c.ValuesFiles {
			b, err := os.ReadFile(spec.Resolve(s, vf))
			if err != nil {
				return nil, fmt.Errorf("chart %s: values: %w", c.Name, err)
			}
			files = append(files, b)
		}
		vals, err := chart.MergeValues(files, c.Values, sets[c.Name], nil)
		if err != nil {
			return nil, fmt.Errorf("chart %s: values: %w", c.Name, err)
		}
		ns := c.Namespace
		if ns == "" {
			ns = "default"
		}
		rel := c.ReleaseName
		if rel == "" {
			rel = c.Name
		}
		r, err := chart.Render(ctx, arc.Data, chart.RenderOptions{ReleaseName: rel, Namespace: ns, Values: vals, KubeVersion: p.KubeVersion})
		if err != nil {
			return nil, fmt.Errorf("chart %s: rendering: %w", c.Name, err)
		}
		found, err := images.Discover(r.Manifest)
		if err != nil {
			return nil, fmt.Errorf("chart %s: finding images: %w", c.Name, err)
		}
		var iv map[string]string
		for k, ref := range c.ImageValues {
			n, err := images.Normalize(ref)
			if err != nil {
				return nil, fmt.Errorf("chart %s: imageValues: %w", c.Name, err)
			}
			if iv == nil {
				iv = map[string]string{}
			}
			iv[k] = n
			all[n], referenced[n] = true, true
		}
		for _, f := range found {
			all[f], referenced[f] = true, true
		}
		p.Charts = append(p.Charts, PlannedChart{Name: c.Name, ReleaseName: c.ReleaseName, Namespace: c.Namespace, Archive: arc, Values: vals, Rendered: r.Manifest, Images: found, ImageValues: iv})
	}
	for _, m := range s.Manifests {
		emit(o.Progress, Event{Stage: "manifests", Message: "collecting manifests " + m.Name})
		var y []byte
		if m.Kustomize != "" {
			y, err = manifest.Kustomize(spec.Resolve(s, m.Kustomize))
		} else {
			paths := make([]string, len(m.Files))
			for i, f := range m.Files {
				paths[i] = spec.Resolve(s, f)
			}
			y, err = manifest.Collect(paths)
		}
		if err != nil {
			return nil, fmt.Errorf("manifests %s: %w", m.Name, err)
		}
		found, err := images.Discover(y)
		if err != nil {
			return nil, fmt.Errorf("manifests %s: finding images: %w", m.Name, err)
		}
		for _, f := range found {
			all[f], referenced[f] = true, true
		}
		p.Manifests = append(p.Manifests, PlannedManifests{Name: m.Name, Namespace: m.Namespace, YAML: y, Images: found})
	}
	// Images of lifecycle Job steps are carried too; install relocates
	// them when it creates the Job.
	if l := s.Lifecycle; l != nil {
		for _, steps := range [][]v1alpha1.Step{l.PreInstall, l.PostInstall, l.PreUpgrade, l.PostUpgrade, l.PreDelete} {
			for _, st := range steps {
				if st.Job == nil {
					continue
				}
				n, err := images.Normalize(st.Job.Image)
				if err != nil {
					return nil, fmt.Errorf("lifecycle step %q: image: %w", st.Name, err)
				}
				all[n], referenced[n] = true, true
			}
		}
	}
	for ref := range all {
		p.Images = append(p.Images, ref)
		if !referenced[ref] {
			p.Unreferenced = append(p.Unreferenced, ref)
		}
	}
	sort.Strings(p.Images)
	sort.Strings(p.Unreferenced)
	return p, nil
}

// splitSets routes "component.key=value" to the chart named component.
func splitSets(sets []string, s *spec.Spec) (map[string][]string, error) {
	out := map[string][]string{}
	for _, kv := range sets {
		comp, rest, ok := strings.Cut(kv, ".")
		if !ok || !strings.Contains(rest, "=") {
			return nil, fmt.Errorf("--set %q: use CHART.key=value, e.g. web.image.tag=2.0", kv)
		}
		if !slices.ContainsFunc(s.Charts, func(c v1alpha1.Chart) bool { return c.Name == comp }) {
			return nil, fmt.Errorf("--set %q: the package has no chart named %q: start the key with the name of one of its charts", kv, comp)
		}
		out[comp] = append(out[comp], rest)
	}
	return out, nil
}

// description starts the package description from the plan.
func (p *Plan) description(createdBy string) *bundle.Description {
	s := p.Spec
	pkg := s.Package
	d := &bundle.Description{
		Name: s.Metadata.Name, Version: s.Metadata.Version, Description: s.Metadata.Description,
		Spec: &pkg, Platforms: p.Platforms, CreatedBy: createdBy,
	}
	if len(p.Charts) > 0 {
		d.KubeVersion = p.KubeVersion
	}
	for _, dep := range s.Dependencies {
		d.Dependencies = append(d.Dependencies, bundle.Dependency{Name: dep.Name, Version: dep.Version})
	}
	return d
}

// layers builds the metadata layers (charts, manifest sets, files) and
// records them in d.
func (p *Plan) layers(d *bundle.Description) ([]bundle.Layer, error) {
	var layers []bundle.Layer
	for _, c := range p.Charts {
		vals, err := json.Marshal(c.Values)
		if err != nil {
			return nil, fmt.Errorf("chart %s: values: %w", c.Name, err)
		}
		layers = append(layers, bundle.Layer{MediaType: bundle.MediaTypeChart, Title: c.Name, Data: c.Archive.Data})
		d.Charts = append(d.Charts, bundle.Chart{
			Name: c.Name, Chart: c.Archive.Name, Version: c.Archive.Version, AppVersion: c.Archive.AppVersion,
			Namespace: c.Namespace, Release: c.ReleaseName, Digest: digest.FromBytes(c.Archive.Data), Size: int64(len(c.Archive.Data)),
			Images: c.Images, Values: vals, ImageValues: c.ImageValues,
		})
	}
	for _, m := range p.Manifests {
		z, err := zstdBytes(m.YAML)
		if err != nil {
			return nil, err
		}
		layers = append(layers, bundle.Layer{MediaType: bundle.MediaTypeManifests, Title: m.Name, Data: z})
		d.Manifests = append(d.Manifests, bundle.ManifestSet{
			Name: m.Name, Namespace: m.Namespace, Digest: digest.FromBytes(z), Size: int64(len(z)), Images: m.Images,
		})
	}
	if len(p.Spec.Files) > 0 {
		data, files, err := filesLayer(p.Spec)
		if err != nil {
			return nil, err
		}
		layers = append(layers, bundle.Layer{MediaType: bundle.MediaTypeFiles, Title: "files", Data: data})
		d.Files = files
	}
	return layers, nil
}

func zstdBytes(b []byte) ([]byte, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil), nil
}

// filesLayer packs the carried files into one deterministic tar+zstd.
func filesLayer(s *spec.Spec) ([]byte, []bundle.File, error) {
	var files []bundle.File
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, nil, err
	}
	tw := tar.NewWriter(zw)
	entries := slices.Clone(s.Files)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Target < entries[j].Target })
	for _, f := range entries {
		src := spec.Resolve(s, f.Source)
		fh, err := os.Open(src)
		if err != nil {
			return nil, nil, fmt.Errorf("files: %w", err)
		}
		st, err := fh.Stat()
		if err != nil || !st.Mode().IsRegular() {
			fh.Close()
			return nil, nil, fmt.Errorf("files: %s is not a regular file: list regular files only", src)
		}
		h := &tar.Header{Name: filepath.ToSlash(f.Target), Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if st.Mode()&0o111 != 0 {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			fh.Close()
			return nil, nil, err
		}
		dg := digest.Canonical.Digester()
		n, err := io.Copy(io.MultiWriter(tw, dg.Hash()), fh)
		fh.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("files: reading %s: %w", src, err)
		}
		files = append(files, bundle.File{Target: f.Target, Digest: dg.Digest(), Size: n})
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), files, nil
}
