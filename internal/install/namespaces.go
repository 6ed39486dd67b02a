package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

func namespaceRef(name string) kube.ObjectRef {
	return kube.ObjectRef{Version: "v1", Kind: "Namespace", Name: name}
}

// ensureNamespaces creates the namespaces of nss that do not exist yet,
// recording each in the record under construction before creating it,
// so that uninstall removes it again.
func (s *session) ensureNamespaces(ctx context.Context, nss []string) error {
	for _, ns := range nss {
		if ns == "" || (s.cur != nil && slices.Contains(s.cur.Namespaces, ns)) {
			continue
		}
		_, err := s.kc.Get(ctx, namespaceRef(ns))
		if err == nil {
			continue
		}
		if !errors.Is(err, kube.ErrNotFound) {
			return err
		}
		if s.cur != nil {
			s.cur.Namespaces = append(s.cur.Namespaces, ns)
			if err := s.save(ctx, s.cur); err != nil {
				return err
			}
		}
		if err := s.kc.EnsureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	return nil
}

// namespacesOf lists the namespaces refs live in or are.
func namespacesOf(refs []kube.ObjectRef) []string {
	var out []string
	for _, r := range refs {
		ns := r.Namespace
		if r.Group == "" && r.Kind == "Namespace" {
			ns = r.Name
		}
		if ns != "" && !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// mergeNamespaces adds the namespaces of from to rec's.
func mergeNamespaces(rec, from *release.Record) {
	if from == nil {
		return
	}
	for _, ns := range from.Namespaces {
		if !slices.Contains(rec.Namespaces, ns) {
			rec.Namespaces = append(rec.Namespaces, ns)
		}
	}
}

// removeNamespaces deletes the namespaces a deployment created, newest
// first, each only when nothing Skiff did not create is left in it;
// others are reported and kept.
func (s *session) removeNamespaces(ctx context.Context, nss []string) error {
	var errs []error
	for _, ns := range slices.Backward(nss) {
		objs, err := s.kc.NamespaceObjects(ctx, ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var foreign []string
		for _, o := range objs {
			if !incidental(o, s.o.Deployment) {
				foreign = append(foreign, o.GetKind()+" "+o.GetName())
			}
		}
		if len(foreign) > 0 {
			if len(foreign) > 3 {
				foreign = append(foreign[:3], "...")
			}
			s.o.emit(Event{Step: "delete", Message: fmt.Sprintf("keeping namespace %s: it holds %d objects Skiff did not create (%s)", ns, len(foreign), strings.Join(foreign, ", "))})
			continue
		}
		s.o.emit(Event{Step: "delete", Message: "removing namespace " + ns})
		if err := s.kc.Delete(ctx, []kube.ObjectRef{namespaceRef(ns)}, s.deleteOptions()); err != nil {
			errs = append(errs, fmt.Errorf("removing namespace %s: %w", ns, err))
		}
	}
	return errors.Join(errs...)
}

// incidental reports whether o is in a namespace without anyone asking
// for it: what Kubernetes puts in every namespace, objects a controller
// made for an owner, and the lock of the deployment's own operation.
func incidental(o *unstructured.Unstructured, deployment string) bool {
	switch {
	case len(o.GetOwnerReferences()) > 0:
		return true
	case o.GetKind() == "ConfigMap" && o.GetName() == "kube-root-ca.crt",
		o.GetKind() == "ServiceAccount" && o.GetName() == "default",
		o.GetKind() == "Endpoints",
		o.GetKind() == "Lease" && o.GetName() == kube.LeasePrefix+"skiff-"+deployment:
		return true
	}
	return false
}
