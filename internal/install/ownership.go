package install

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// ownerLabels are the labels that mark an object as this deployment's.
func (s *session) ownerLabels() map[string]string {
	return map[string]string{LabelManagedBy: "skiff", LabelDeployment: s.o.Deployment, LabelNamespace: s.o.Namespace}
}

// otherOwner says who, other than this deployment, owns obj; "" when it
// is this deployment's. Objects labelled by Skiff before the namespace
// label existed count as the deployment's of that name.
func (s *session) otherOwner(obj *unstructured.Unstructured) string {
	l := obj.GetLabels()
	if l[LabelManagedBy] == "skiff" && l[LabelDeployment] != "" {
		if l[LabelDeployment] == s.o.Deployment && (l[LabelNamespace] == "" || l[LabelNamespace] == s.o.Namespace) {
			return ""
		}
		if l[LabelNamespace] == "" {
			return "belongs to deployment " + l[LabelDeployment]
		}
		return fmt.Sprintf("belongs to deployment %s in namespace %s", l[LabelDeployment], l[LabelNamespace])
	}
	if a := obj.GetAnnotations(); a["meta.helm.sh/release-name"] != "" {
		return fmt.Sprintf("belongs to Helm release %s in namespace %s", a["meta.helm.sh/release-name"], a["meta.helm.sh/release-namespace"])
	}
	return "exists and was not created by Skiff"
}

// checkObjects refuses to apply over objects another owner holds, unless
// the options take ownership. Namespaces are shared and never refused.
func (s *session) checkObjects(ctx context.Context, refs []kube.ObjectRef) error {
	if s.o.TakeOwnership {
		return nil
	}
	var taken []string
	for _, ref := range refs {
		if ref.Group == "" && ref.Kind == "Namespace" {
			continue
		}
		obj, err := s.kc.Get(ctx, ref)
		if errors.Is(err, kube.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if owner := s.otherOwner(obj); owner != "" {
			taken = append(taken, ref.String()+" "+owner)
		}
	}
	if len(taken) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d objects of deployment %s are not its own:\n  %s\ninstall under other object names, remove them, or pass --take-ownership to adopt them",
		ErrOwned, len(taken), s.o.Deployment, strings.Join(taken, "\n  "))
}

// checkRelease refuses to change Helm release name in ns unless it does
// not exist yet, this deployment's records (or prev, what the cluster
// runs) list it, or the options take ownership.
func (s *session) checkRelease(ctx context.Context, name, ns string, prev *release.Record) error {
	if s.o.TakeOwnership {
		return nil
	}
	_, err := s.charts.Get(ctx, name, ns)
	if errors.Is(err, chart.ErrReleaseNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	lists := func(r *release.Record) bool {
		for _, c := range r.Components {
			if c.Kind == kindChart && c.HelmRelease == name && c.Namespace == ns {
				return true
			}
		}
		return false
	}
	if prev != nil && lists(prev) {
		return nil
	}
	hist, err := s.store.History(ctx, s.o.Namespace, s.o.Deployment)
	if err != nil && !errors.Is(err, release.ErrNotFound) {
		return err
	}
	for _, r := range hist {
		if lists(r) {
			return nil
		}
	}
	owner := "was not installed by Skiff (Helm or another tool made it)"
	if all, err := s.store.Deployments(ctx, ""); err == nil {
		for _, r := range all {
			if r.Key() != s.o.Namespace+"/"+s.o.Deployment && lists(r) {
				owner = fmt.Sprintf("belongs to deployment %s in namespace %s", r.Deployment, r.Namespace)
				break
			}
		}
	}
	return fmt.Errorf("%w: Helm release %s in namespace %s %s: install under another --name, remove it, or pass --take-ownership to adopt it",
		ErrOwned, name, ns, owner)
}
