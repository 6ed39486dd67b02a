package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

// SchemaID is the $id of the generated JSON Schema.
const SchemaID = "https://skiff.dev/schemas/v1alpha1/skiff.schema.json"

// Patterns shared by the schema and the docs. The validator enforces the
// same rules in Go.
const (
	labelPattern    = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	platformPattern = `^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`
	// semverPattern is the pattern from semver.org.
	semverPattern = `^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`
)

// fieldDocs describes every field, keyed "Type.jsonName". A test checks
// that each field of api/v1alpha1 has an entry.
var fieldDocs = map[string]string{
	"Package.apiVersion":       "Version of the spec format; always " + v1alpha1.APIVersion + ".",
	"Package.kind":             "Always " + v1alpha1.Kind + ".",
	"Package.metadata":         "Name, version and description of the package.",
	"Package.kubeVersion":      "Kubernetes version the package targets (1.35 or 1.35.4): charts are rendered for it at build and lint, and install says when the cluster's differs. Defaults to Helm's default version.",
	"Package.platforms":        "os/arch[/variant] image platforms to keep from multi-arch images. Defaults to [linux/amd64].",
	"Package.images":           "Image references carried in addition to those found in charts and manifests.",
	"Package.imageSignatures":  "Cosign public keys images must be signed with; build refuses unsigned or mis-signed images.",
	"ImageSignature.image":     "A repository without tag or digest (ghcr.io/acme/app) whose images must be signed.",
	"ImageSignature.registry":  "A registry host[:port] (ghcr.io) all of whose images must be signed.",
	"ImageSignature.publicKey": "The cosign public key file (PEM, ECDSA P-256 or ed25519), relative to skiff.yaml.",
	"Package.charts":           "Helm charts carried and installed by the package.",
	"Package.manifests":        "Plain Kubernetes manifests or kustomizations carried and applied by the package.",
	"Package.files":            "Other files carried in the package.",
	"Package.dependencies":     "Packages that must be installed before this one.",
	"Package.lifecycle":        "Steps run around install, upgrade and delete.",
	"Package.networkPolicy":    "Generated default-deny NetworkPolicies and the flows they allow.",

	"Metadata.name":        "Package name: a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters).",
	"Metadata.version":     "Package version: a strict semantic version such as 1.2.3.",
	"Metadata.description": fmt.Sprintf("One-paragraph description, at most %d characters.", MaxDescription),
	"Metadata.maintainers": "People or teams responsible for the package.",

	"Maintainer.name":  "Name of the person or team.",
	"Maintainer.email": "Email address.",

	"Chart.name":        "Component name, unique across charts and manifests; a DNS-1123 label.",
	"Chart.path":        "Local chart directory or .tgz, relative to skiff.yaml. Exactly one of path or repo.",
	"Chart.repo":        "https:// Helm repository URL, or oci:// registry repository holding the chart (without the chart name). http:// only for localhost.",
	"Chart.chart":       "Chart name in repo. Defaults to name. Only with repo.",
	"Chart.version":     "Exact chart version to fetch. Required with repo; not allowed with path.",
	"Chart.namespace":   "Namespace to install into. Defaults to the install namespace.",
	"Chart.releaseName": "Helm release name at install; a DNS-1123 label of at most 53 characters, unique among the charts. Default: the deployment name for a chart named like the deployment, else DEPLOYMENT-NAME.",
	"Chart.valuesFiles": "Values files relative to skiff.yaml, merged in order.",
	"Chart.values":      "Inline values, merged after valuesFiles.",
	"Chart.imageValues": "Dotted value paths mapped to carried images; at install each is set to the relocated, digest-pinned reference.",

	"Manifest.name":      "Component name, unique across charts and manifests; a DNS-1123 label.",
	"Manifest.namespace": "Namespace for namespaced objects without one. Defaults to the install namespace.",
	"Manifest.files":     "YAML files or directories of them, relative to skiff.yaml. Exactly one of files or kustomize.",
	"Manifest.kustomize": "Directory holding a kustomization.yaml, relative to skiff.yaml.",

	"File.source": "File or directory to carry, relative to skiff.yaml.",
	"File.target": "Path inside the package's files tree. Defaults to the base name of source.",

	"Dependency.name":    "Name of the package depended on.",
	"Dependency.version": "Semantic version range, such as \">=1.2.0 <2.0.0\" or \"^1.2\".",

	"Lifecycle.preInstall":  "Steps run before the first install.",
	"Lifecycle.postInstall": "Steps run after the first install.",
	"Lifecycle.preUpgrade":  "Steps run before an upgrade.",
	"Lifecycle.postUpgrade": "Steps run after an upgrade.",
	"Lifecycle.preDelete":   "Steps run before uninstall.",

	"Step.name":    "What the step does, shown in progress output.",
	"Step.apply":   "Name of a manifest component to apply at this point. Exactly one of apply or wait.",
	"Step.wait":    "Resource to wait for: kind/name or namespace/kind/name.",
	"Step.run":     "Command run on the machine running skiff, in a directory holding the package's files; refused unless --allow-commands.",
	"Step.job":     "Kubernetes Job run to completion from an image the package carries.",
	"Step.timeout": "How long the step may take, as a Go duration (90s, 5m). Defaults to 5m.",

	"RunStep.command": "Program to run: a carried file (./bin/seed.sh), an absolute path or a name in PATH; with shell, a /bin/sh script.",
	"RunStep.args":    "Arguments, passed as they are (no shell); with shell, the script's $1, $2, ...",
	"RunStep.shell":   "Run command with /bin/sh -c.",
	"RunStep.dir":     "Working directory inside the package's files. Defaults to the files directory.",
	"RunStep.env":     "Extra environment variables (names not starting with SKIFF_).",

	"JobStep.image":          "Image the Job runs; carried in the package and relocated to the site registry.",
	"JobStep.command":        "Replaces the image's entrypoint.",
	"JobStep.args":           "Arguments of the container.",
	"JobStep.env":            "Environment variables of the container (names not starting with SKIFF_).",
	"JobStep.namespace":      "Namespace of the Job. Defaults to the install namespace.",
	"JobStep.serviceAccount": "Service account of the Job's pod. Defaults to the namespace's default.",
	"JobStep.retries":        "The Job's backoffLimit: retries after a failed pod. Defaults to 0.",

	"NetworkPolicy.enabled": "Install default-deny policies plus the allowed flows.",
	"NetworkPolicy.allow":   "Flows allowed besides traffic inside the namespace.",

	"NetworkAllow.name":        "Rule name, unique in allow; a DNS-1123 label.",
	"NetworkAllow.direction":   "ingress or egress.",
	"NetworkAllow.podSelector": "Labels of the package's pods the rule applies to. Empty means all.",
	"NetworkAllow.cidr":        "Peer IP block, such as 10.0.0.0/8. Not combined with namespace or pods.",
	"NetworkAllow.namespace":   "Peer namespace.",
	"NetworkAllow.pods":        "Labels of the peer pods.",
	"NetworkAllow.ports":       "Allowed ports. Empty means all.",
	"NetworkAllow.protocol":    "TCP (the default), UDP or SCTP.",
}

// typeDocs describes each type.
var typeDocs = map[string]string{
	"Package":        "A Skiff package spec (skiff.yaml).",
	"Metadata":       "Names and describes a package.",
	"Maintainer":     "A person or team responsible for the package.",
	"ImageSignature": "Requires the images of a repository or registry to carry a cosign signature made with a key.",
	"Chart":          "A Helm chart, from a local path or a repository.",
	"Manifest":       "Plain manifests or a kustomization.",
	"File":           "A file carried in the package.",
	"Dependency":     "A package that must be installed first.",
	"Lifecycle":      "Steps run around install operations.",
	"Step":           "One lifecycle action: apply a manifest component, wait for a resource, run a command or run a Job.",
	"RunStep":        "A command run on the machine running skiff.",
	"JobStep":        "A Kubernetes Job run to completion from a carried image.",
	"NetworkPolicy":  "Generated NetworkPolicies.",
	"NetworkAllow":   "One allowed network flow.",
}

// fieldSchema adds constraints to a field's schema, keyed like fieldDocs.
// For list fields the constraints apply to the items.
var fieldSchema = map[string]map[string]any{
	"Package.apiVersion":     {"const": v1alpha1.APIVersion},
	"Package.kind":           {"const": v1alpha1.Kind},
	"Package.platforms":      {"pattern": platformPattern},
	"Package.kubeVersion":    {"pattern": `^v?[0-9]+\.[0-9]+(\.[0-9]+)?$`},
	"Metadata.name":          {"pattern": labelPattern, "maxLength": 63},
	"Metadata.version":       {"pattern": semverPattern},
	"Metadata.description":   {"maxLength": MaxDescription},
	"Chart.name":             {"pattern": labelPattern, "maxLength": 63},
	"Chart.namespace":        {"pattern": labelPattern, "maxLength": 63},
	"Chart.releaseName":      {"pattern": labelPattern, "maxLength": 53},
	"Chart.imageValues":      {"propertyNames": map[string]any{"pattern": valuePathPattern}},
	"Chart.repo":             {"pattern": `^(https|oci)://|^http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?(/|$)`},
	"Manifest.name":          {"pattern": labelPattern, "maxLength": 63},
	"Manifest.namespace":     {"pattern": labelPattern, "maxLength": 63},
	"Dependency.name":        {"pattern": labelPattern, "maxLength": 63},
	"Step.wait":              {"pattern": `^[^/\s]+/[^/\s]+(/[^/\s]+)?$`},
	"RunStep.command":        {"minLength": 1},
	"RunStep.env":            {"propertyNames": map[string]any{"pattern": `^[A-Za-z_][A-Za-z0-9_]*$`}},
	"JobStep.image":          {"minLength": 1},
	"JobStep.namespace":      {"pattern": labelPattern, "maxLength": 63},
	"JobStep.env":            {"propertyNames": map[string]any{"pattern": `^[A-Za-z_][A-Za-z0-9_]*$`}},
	"JobStep.retries":        {"minimum": 0},
	"NetworkAllow.name":      {"pattern": labelPattern, "maxLength": 63},
	"NetworkAllow.direction": {"enum": []string{"ingress", "egress"}},
	"NetworkAllow.protocol":  {"enum": []string{"TCP", "UDP", "SCTP"}},
	"NetworkAllow.ports":     {"minimum": 1, "maximum": 65535},
}

// typeSchema adds constraints to a type's schema.
var typeSchema = map[string]map[string]any{
	"Chart": {"oneOf": []any{
		map[string]any{"required": []string{"path"}, "not": map[string]any{"anyOf": []any{
			map[string]any{"required": []string{"repo"}},
			map[string]any{"required": []string{"version"}},
			map[string]any{"required": []string{"chart"}},
		}}},
		map[string]any{"required": []string{"repo", "version"}, "not": map[string]any{"required": []string{"path"}}},
	}},
	"ImageSignature": {"oneOf": []any{
		map[string]any{"required": []string{"image"}, "not": map[string]any{"required": []string{"registry"}}},
		map[string]any{"required": []string{"registry"}, "not": map[string]any{"required": []string{"image"}}},
	}},
	"Manifest": {"oneOf": []any{
		map[string]any{"required": []string{"files"}, "not": map[string]any{"required": []string{"kustomize"}}},
		map[string]any{"required": []string{"kustomize"}, "not": map[string]any{"required": []string{"files"}}},
	}},
	"Step": {"oneOf": []any{
		map[string]any{"required": []string{"apply"}},
		map[string]any{"required": []string{"wait"}},
		map[string]any{"required": []string{"run"}},
		map[string]any{"required": []string{"job"}},
	}},
}

// optional lists fields without omitempty that may still be left out.
var optional = map[string]bool{
	"NetworkPolicy.enabled": true,
}

// JSONSchema returns a JSON Schema (draft 2020-12) for skiff.yaml,
// generated from the api/v1alpha1 types. docs/skiff.schema.json holds a
// copy, kept in sync by a test.
func JSONSchema() []byte {
	defs := map[string]any{}
	schemaForType(reflect.TypeOf(v1alpha1.Package{}), defs)
	root := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         SchemaID,
		"title":       "Skiff package spec (" + v1alpha1.APIVersion + ")",
		"description": typeDocs["Package"],
		"$ref":        "#/$defs/Package",
		"$defs":       defs,
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		panic(err) // the schema is built from static values
	}
	return b.Bytes()
}

// schemaForType returns the schema of t, adding struct definitions to defs.
func schemaForType(t reflect.Type, defs map[string]any) map[string]any {
	switch t.Kind() {
	case reflect.Pointer:
		return schemaForType(t.Elem(), defs)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaForType(t.Elem(), defs)}
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}}
		}
		return map[string]any{"type": "object"}
	case reflect.Struct:
		name := t.Name()
		if _, ok := defs[name]; !ok {
			defs[name] = nil // reserve, in case of recursion
			defs[name] = structSchema(t, defs)
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	}
	panic(fmt.Sprintf("spec: no JSON Schema for %s", t))
}

func structSchema(t reflect.Type, defs map[string]any) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range structFields(t) {
		sf := t.Field(f.index)
		key := t.Name() + "." + f.name
		s := schemaForType(sf.Type, defs)
		if d := fieldDocs[key]; d != "" {
			s["description"] = d
		}
		target := s
		if items, ok := s["items"].(map[string]any); ok {
			target = items
		}
		for k, v := range fieldSchema[key] {
			target[k] = v
		}
		props[f.name] = s
		if !strings.Contains(sf.Tag.Get("json"), ",omitempty") && !optional[key] {
			required = append(required, f.name)
		}
	}
	s := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"properties":           props,
	}
	if d := typeDocs[t.Name()]; d != "" {
		s["description"] = d
	}
	if len(required) > 0 {
		s["required"] = required
	}
	for k, v := range typeSchema[t.Name()] {
		s[k] = v
	}
	return s
}
