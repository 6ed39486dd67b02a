package images

import (
	"fmt"
	"slices"
)

// Discover returns the normalized image references in manifests, a
// multi-document YAML stream, sorted and without duplicates.
//
// It finds the containers, initContainers and ephemeralContainers of Pods,
// PodTemplates and every pod template (spec.template.spec, and
// spec.jobTemplate.spec.template.spec for CronJobs) of the core, apps and
// batch groups, including kinds it does not know. In custom resources
// (groups that are not built into Kubernetes) it finds every string field
// named image and every mapping shaped {repository, tag} or
// {repository, digest}, with an optional registry. Items of List kinds are
// walked too; empty documents are skipped.
func Discover(manifests []byte) ([]string, error) {
	docs, err := decode(manifests)
	if err != nil {
		return nil, err
	}
	var refs []string
	err = walk(docs, func(obj object, occ occurrence) error {
		ref, err := Normalize(occ.raw())
		if err != nil {
			return fmt.Errorf("%s: %s: %w", obj, occ.where, err)
		}
		refs = append(refs, ref)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(refs)
	return slices.Compact(refs), nil
}
