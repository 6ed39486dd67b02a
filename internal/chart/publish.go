package chart

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/registry"
	"sigs.k8s.io/yaml"
)

// Media types of a Helm chart stored in an OCI registry, as helm push
// writes it: a manifest whose config is the chart's metadata and whose one
// layer is the chart archive.
const (
	OCIConfigMediaType = registry.ConfigMediaType
	OCILayerMediaType  = registry.ChartLayerMediaType
)

// OCIChart is what a registry needs to serve a chart to helm pull,
// helm install oci://, Flux and Argo CD.
type OCIChart struct {
	Name, Version string
	// Config is the manifest's config blob: Chart.yaml as JSON.
	Config []byte
	// Annotations are the manifest's annotations: title, version,
	// description (no creation time, so the same chart gives the same
	// manifest).
	Annotations map[string]string
}

// OCI describes the chart archive data as an OCI Helm chart.
func OCI(data []byte) (*OCIChart, error) {
	ch, err := load(data)
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(ch.Metadata)
	if err != nil {
		return nil, fmt.Errorf("chart %s: encoding its metadata: %w", ch.Name(), err)
	}
	ann := map[string]string{
		ocispec.AnnotationTitle:   ch.Name(),
		ocispec.AnnotationVersion: ch.Metadata.Version,
	}
	if ch.Metadata.Description != "" {
		ann[ocispec.AnnotationDescription] = ch.Metadata.Description
	}
	return &OCIChart{Name: ch.Name(), Version: ch.Metadata.Version, Config: cfg, Annotations: ann}, nil
}

// WithDefaults returns the chart archive data with values merged over its
// default values (values.yaml, rewritten; comments are lost), packaged
// deterministically. Values for a subchart go under its name, as users
// give them. Nothing else of the chart changes.
func WithDefaults(data []byte, values map[string]any) ([]byte, error) {
	ch, err := load(data)
	if err != nil {
		return nil, err
	}
	merged := MergeMaps(copyMap(ch.Values), values)
	raw, err := yaml.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("chart %s: encoding its values: %w", ch.Name(), err)
	}
	found := false
	for _, f := range ch.Raw {
		if f.Name == "values.yaml" {
			f.Data, found = raw, true
		}
	}
	if !found {
		ch.Raw = append(ch.Raw, &common.File{Name: "values.yaml", Data: raw})
	}
	a, err := pack(&tree{ch: ch})
	if err != nil {
		return nil, err
	}
	return a.Data, nil
}
