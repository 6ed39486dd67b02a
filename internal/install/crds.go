package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// Helm never deletes an object annotated with this policy: not on
// uninstall, not when an upgrade drops it.
const (
	helmResourcePolicy = "helm.sh/resource-policy"
	helmKeep           = "keep"
)

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// keepCRDs wraps a chart post-renderer so that every CRD among the
// chart's templates is annotated helm.sh/resource-policy: keep. Helm then
// leaves it (and every custom resource of its kind) in place on uninstall
// and upgrade, as it does the CRDs of crds/ directories.
func keepCRDs(post func([]byte) ([]byte, error)) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		b, err := post(b)
		if err != nil {
			return nil, err
		}
		return annotateCRDs(b)
	}
}

// annotateCRDs adds the keep policy to the CRDs of a YAML stream; other
// documents are left byte for byte.
func annotateCRDs(b []byte) ([]byte, error) {
	if !bytes.Contains(b, []byte("CustomResourceDefinition")) {
		return b, nil
	}
	docs := docSeparator.Split(string(b), -1)
	for i, doc := range docs {
		if !strings.Contains(doc, "CustomResourceDefinition") {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj == nil {
			continue // not an object; Helm reports it
		}
		if obj["kind"] != "CustomResourceDefinition" || !strings.HasPrefix(fmt.Sprint(obj["apiVersion"]), "apiextensions.k8s.io/") {
			continue
		}
		md, _ := obj["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
			obj["metadata"] = md
		}
		an, _ := md["annotations"].(map[string]any)
		if an == nil {
			an = map[string]any{}
			md["annotations"] = an
		}
		an[helmResourcePolicy] = helmKeep
		out, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		docs[i] = "\n" + string(out)
	}
	return []byte(strings.Join(docs, "---")), nil
}

// isCRD reports whether o is a CustomResourceDefinition.
func isCRD(o release.Object) bool {
	return o.Kind == "CustomResourceDefinition" && o.Group == "apiextensions.k8s.io"
}

func crdRef(name string) kube.ObjectRef {
	return kube.ObjectRef{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: name}
}

// recordCRDs lists the CRDs a deployment's components brought: those
// of its manifests and those its Helm releases name (crds/ and
// templates).
func (s *session) recordCRDs(ctx context.Context, comps []release.Component) ([]kube.ObjectRef, error) {
	var refs []kube.ObjectRef
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			refs = append(refs, crdRef(name))
		}
	}
	for _, c := range comps {
		switch c.Kind {
		case kindManifests:
			for _, o := range c.Objects {
				if isCRD(o) {
					add(o.Name)
				}
			}
		case kindChart:
			r, err := s.charts.Get(ctx, c.HelmRelease, c.Namespace)
			if err != nil {
				if errors.Is(err, chart.ErrReleaseNotFound) {
					continue
				}
				return nil, err
			}
			for _, n := range r.CRDs {
				add(n)
			}
		}
	}
	return refs, nil
}
