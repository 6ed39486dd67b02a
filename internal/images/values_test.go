package images

import (
	"errors"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestSetValues(t *testing.T) {
	const (
		solver   = "quay.io/jetstack/cert-manager-acmesolver:v1.21.1"
		reloader = "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1"
		site     = "10.0.0.5:5000/mirror/quay.io"
	)
	m := Map{
		solver:   site + "/jetstack/cert-manager-acmesolver@" + dgstA,
		reloader: site + "/prometheus-operator/prometheus-config-reloader@" + dgstB,
	}
	tests := []struct {
		name               string
		vals, defaults, iv string // YAML
		want               string // YAML of vals afterwards
		wantErr            error
	}{{
		name:     "cert-manager map without registry field",
		defaults: "acmesolver: {image: {repository: quay.io/jetstack/cert-manager-acmesolver, pullPolicy: IfNotPresent}}",
		iv:       "acmesolver.image: " + solver,
		want:     "acmesolver: {image: {repository: " + site + "/jetstack/cert-manager-acmesolver, digest: '" + dgstA + "', tag: v1.21.1}}",
	}, {
		name:     "kube-prometheus-stack map with registry and sha",
		vals:     "prometheusOperator: {admissionWebhooks: {enabled: false}}",
		defaults: "prometheusOperator: {prometheusConfigReloader: {image: {registry: quay.io, repository: prometheus-operator/prometheus-config-reloader, tag: '', sha: ''}}}",
		iv:       "prometheusOperator.prometheusConfigReloader.image: " + reloader,
		want: "prometheusOperator: {admissionWebhooks: {enabled: false}, prometheusConfigReloader: {image: {registry: '10.0.0.5:5000'," +
			" repository: mirror/quay.io/prometheus-operator/prometheus-config-reloader, tag: v0.93.1, sha: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb}}}",
	}, {
		name: "map given in the package values keeps its other fields",
		vals: "img: {repository: x, pullPolicy: Always}",
		iv:   "img: " + solver,
		want: "img: {repository: " + site + "/jetstack/cert-manager-acmesolver, digest: '" + dgstA + "', tag: v1.21.1, pullPolicy: Always}",
	}, {
		name:     "string value",
		defaults: "operator: {reloaderImage: quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1}",
		iv:       "operator.reloaderImage: " + reloader,
		want:     "operator: {reloaderImage: '" + site + "/prometheus-operator/prometheus-config-reloader@" + dgstB + "'}",
	}, {
		name: "absent path becomes a string",
		iv:   "a.b.c: " + solver,
		want: "a: {b: {c: '" + site + "/jetstack/cert-manager-acmesolver@" + dgstA + "'}}",
	}, {
		name:    "image not carried",
		iv:      "x: busybox:1.37",
		wantErr: ErrUnknownImage,
	}, {
		name:    "parent is not a mapping",
		vals:    "a: 3",
		iv:      "a.image: " + solver,
		wantErr: errNotMapping,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := yamlMap(t, tt.vals)
			var iv map[string]string
			if err := yaml.Unmarshal([]byte(tt.iv), &iv); err != nil {
				t.Fatal(err)
			}
			err := SetValues(vals, yamlMap(t, tt.defaults), iv, m)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("SetValues error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := yamlMap(t, tt.want); !reflect.DeepEqual(vals, want) {
				got, _ := yaml.Marshal(vals)
				t.Errorf("values:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func yamlMap(t *testing.T, s string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
