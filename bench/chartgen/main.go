// Command chartgen writes a large Helm chart shaped like
// kube-prometheus-stack, for the install benchmark (bench/install.sh):
// 10 CRDs with sizeable schemas under crds/, and 135 templated objects
// (Deployments, a DaemonSet, a StatefulSet, Services, ConfigMaps,
// ServiceAccounts, RBAC, and custom resources of those CRDs). Nothing
// third-party is vendored: the chart is generated at benchmark time.
//
//	go run ./bench/chartgen -out DIR -image-prefix quay.io/bench
//
// Each of the 12 workloads names the image PREFIX/COMPONENT:1.0 through
// its values (repository and tag), as charts do; -print-images lists them.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Twelve components, each with a ServiceAccount, a workload, a Service, a
// ConfigMap, a ClusterRole and ClusterRoleBinding, a Role and RoleBinding:
// 96 objects; with 10 dashboards and 29 custom resources, 135.
var components = []string{
	"operator", "prometheus", "alertmanager", "grafana", "kube-state-metrics", "node-exporter",
	"admission", "thanos-ruler", "config-reloader", "blackbox", "pushgateway", "adapter",
}

const (
	dashboards      = 10
	customResources = 29
	crdCount        = 10
	// schema properties per CRD: about 60 KiB of schema each
	schemaFields = 40
)

var kinds = []string{
	"Prometheus", "Alertmanager", "ServiceMonitor", "PodMonitor", "Probe",
	"PrometheusRule", "ThanosRuler", "AlertmanagerConfig", "ScrapeConfig", "PrometheusAgent",
}

func main() {
	out := flag.String("out", "", "directory to write the chart into (required)")
	prefix := flag.String("image-prefix", "quay.io/bench", "repository prefix of the workloads' images")
	name := flag.String("name", "big", "chart name")
	printImages := flag.Bool("print-images", false, "print the images the chart names, one a line, and exit")
	flag.Parse()
	if *printImages {
		for _, c := range components {
			fmt.Printf("%s/%s:1.0\n", *prefix, c)
		}
		return
	}
	if *out == "" {
		fmt.Fprintln(os.Stderr, "chartgen: -out DIR is required")
		os.Exit(2)
	}
	if err := write(*out, *name, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "chartgen:", err)
		os.Exit(1)
	}
}

func write(dir, name, prefix string) error {
	files := map[string]string{
		"Chart.yaml": fmt.Sprintf("apiVersion: v2\nname: %s\nversion: 1.0.0\nappVersion: \"1.0\"\ndescription: A large generated chart shaped like kube-prometheus-stack\n", name),
		"templates/_helpers.tpl": `{{- define "big.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: big
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
`,
	}
	var values strings.Builder
	for _, c := range components {
		key := valueKey(c)
		fmt.Fprintf(&values, "%s:\n  replicas: 1\n  image:\n    repository: %s/%s\n    tag: \"1.0\"\n  resources:\n    requests: {cpu: 10m, memory: 16Mi}\n    limits: {memory: 64Mi}\n  config:\n", key, prefix, c)
		for i := range 20 {
			fmt.Fprintf(&values, "    setting%02d: value-%s-%d\n", i, c, i)
		}
		files["templates/"+c+".yaml"] = componentTemplate(c, key)
	}
	files["values.yaml"] = values.String()
	for i := range dashboards {
		files[fmt.Sprintf("templates/dashboard-%02d.yaml", i)] = dashboard(i)
	}
	for i := range crdCount {
		files[fmt.Sprintf("crds/crd-%02d.yaml", i)] = crd(kinds[i])
	}
	var crs strings.Builder
	for i := range customResources {
		if i > 0 {
			crs.WriteString("---\n")
		}
		crs.WriteString(customResource(kinds[i%crdCount], i))
	}
	files["templates/custom-resources.yaml"] = crs.String()
	for p, content := range files {
		f := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func valueKey(c string) string {
	parts := strings.Split(c, "-")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

func componentTemplate(c, key string) string {
	kind, extra := "Deployment", "  replicas: {{ .Values."+key+".replicas }}\n"
	switch c {
	case "node-exporter":
		kind, extra = "DaemonSet", ""
	case "alertmanager":
		kind, extra = "StatefulSet", extra+"  serviceName: {{ .Release.Name }}-"+c+"\n"
	}
	r := strings.NewReplacer("COMP", c, "KEY", key, "KIND", kind, "EXTRA\n", extra)
	return r.Replace(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}-COMP
  labels:
    {{- include "big.labels" . | nindent 4 }}
    app.kubernetes.io/name: COMP
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-COMP-config
  labels:
    {{- include "big.labels" . | nindent 4 }}
data:
  config.yaml: |
    {{- toYaml .Values.KEY.config | nindent 4 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-COMP
  labels:
    {{- include "big.labels" . | nindent 4 }}
    app.kubernetes.io/name: COMP
spec:
  selector:
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/name: COMP
  ports:
    - {name: http, port: 8080, targetPort: http}
` + roleAndBinding("ClusterRole", `  - apiGroups: [""]
    resources: [nodes, services, endpoints, pods, configmaps]
    verbs: [get, list, watch]
  - apiGroups: [monitoring.bench.skiff.dev]
    resources: ["*"]
    verbs: [get, list, watch]
`) + roleAndBinding("Role", `  - apiGroups: [""]
    resources: [secrets, configmaps]
    verbs: [get, list, watch]
`) + `---
apiVersion: apps/v1
kind: KIND
metadata:
  name: {{ .Release.Name }}-COMP
  labels:
    {{- include "big.labels" . | nindent 4 }}
    app.kubernetes.io/name: COMP
spec:
EXTRA
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
      app.kubernetes.io/name: COMP
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
        app.kubernetes.io/name: COMP
      annotations:
        checksum/config: {{ toYaml .Values.KEY.config | sha256sum }}
    spec:
      serviceAccountName: {{ .Release.Name }}-COMP
      containers:
        - name: COMP
          image: "{{ .Values.KEY.image.repository }}:{{ .Values.KEY.image.tag }}"
          args: [--config.file=/etc/COMP/config.yaml, --web.listen-address=:8080]
          ports:
            - {name: http, containerPort: 8080}
          readinessProbe:
            httpGet: {path: /-/ready, port: http}
          resources:
            {{- toYaml .Values.KEY.resources | nindent 12 }}
          volumeMounts:
            - {name: config, mountPath: /etc/COMP}
      volumes:
        - name: config
          configMap: {name: {{ .Release.Name }}-COMP-config}
`)
}

// roleAndBinding is a KIND (ClusterRole or Role) with the given rules and
// its binding to the component's ServiceAccount.
func roleAndBinding(kind, rules string) string {
	return strings.ReplaceAll(`---
apiVersion: rbac.authorization.k8s.io/v1
kind: KIND
metadata:
  name: {{ .Release.Name }}-COMP
  labels:
    {{- include "big.labels" . | nindent 4 }}
rules:
`, "KIND", kind) + rules + strings.ReplaceAll(`---
apiVersion: rbac.authorization.k8s.io/v1
kind: KINDBinding
metadata:
  name: {{ .Release.Name }}-COMP
  labels:
    {{- include "big.labels" . | nindent 4 }}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: KIND, name: {{ .Release.Name }}-COMP}
subjects:
  - {kind: ServiceAccount, name: {{ .Release.Name }}-COMP, namespace: {{ .Release.Namespace }}}
`, "KIND", kind)
}

func dashboard(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-dashboard-%02d
  labels:
    {{- include "big.labels" . | nindent 4 }}
    grafana_dashboard: "1"
data:
  dashboard-%02d.json: |
    {"title": "Dashboard %d", "panels": [
`, i, i, i)
	for p := range 40 {
		sep := ","
		if p == 39 {
			sep = ""
		}
		fmt.Fprintf(&b, "      {\"id\": %d, \"type\": \"timeseries\", \"title\": \"Panel %d\", \"targets\": [{\"expr\": \"sum(rate(http_requests_total{job=\\\"job-%d\\\"}[5m])) by (instance)\"}]}%s\n", p, p, p, sep)
	}
	b.WriteString("    ]}\n")
	return b.String()
}

// crd is a CustomResourceDefinition whose schema has nested objects,
// arrays and descriptions, like the operator's (tens of KiB each).
func crd(kind string) string {
	plural := strings.ToLower(kind) + "s"
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %s.monitoring.bench.skiff.dev
spec:
  group: monitoring.bench.skiff.dev
  names: {kind: %s, listKind: %sList, plural: %s, singular: %s}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          description: %s is a generated resource for the install benchmark.
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            status: {type: object, x-kubernetes-preserve-unknown-fields: true}
            spec:
              type: object
              properties:
`, plural, kind, kind, plural, strings.ToLower(kind), kind)
	for f := range schemaFields {
		fmt.Fprintf(&b, `                field%02d:
                  type: object
                  description: Field %d of %s configures one aspect of the resource; this description is as long as the generated operator's are, so that the schema weighs what a real one does.
                  properties:
                    enabled: {type: boolean, description: Whether field %d is enabled.}
                    name: {type: string, description: The name used by field %d., maxLength: 253}
                    replicas: {type: integer, format: int32, minimum: 0, description: How many replicas field %d asks for.}
                    selector:
                      type: object
                      description: A label selector for field %d.
                      properties:
                        matchLabels: {type: object, additionalProperties: {type: string}}
                        matchExpressions:
                          type: array
                          items:
                            type: object
                            required: [key, operator]
                            properties:
                              key: {type: string}
                              operator: {type: string, enum: [In, NotIn, Exists, DoesNotExist]}
                              values: {type: array, items: {type: string}}
                    endpoints:
                      type: array
                      description: Endpoints of field %d.
                      items:
                        type: object
                        properties:
                          port: {type: string}
                          path: {type: string}
                          interval: {type: string, pattern: "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
                          scheme: {type: string, enum: [http, https]}
                          tlsConfig: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, f, f, kind, f, f, f, f, f)
	}
	return b.String()
}

func customResource(kind string, i int) string {
	return fmt.Sprintf(`apiVersion: monitoring.bench.skiff.dev/v1
kind: %s
metadata:
  name: {{ .Release.Name }}-%s-%02d
  labels:
    {{- include "big.labels" . | nindent 4 }}
spec:
  field00: {enabled: true, name: rule-%02d, replicas: 1, selector: {matchLabels: {app.kubernetes.io/instance: {{ .Release.Name | quote }}}}}
  field01:
    endpoints:
      - {port: http, path: /metrics, interval: 30s, scheme: http}
      - {port: http, path: /federate, interval: 1m, scheme: http}
`, kind, strings.ToLower(kind), i, i)
}
