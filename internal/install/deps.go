package install

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/release"
)

// Sentinel errors of the package graph.
var (
	// ErrDependencyMissing: a dependency is neither installed nor bundled.
	ErrDependencyMissing = errors.New("dependency missing")
	// ErrRequired: uninstalling would break a deployment that depends on
	// this one.
	ErrRequired = errors.New("required by another deployment")
)

// ensureDependencies installs, in order, every dependency of p that no
// deployment in the cluster satisfies yet, from the archives bundled in p
// (build --with-deps). Dependencies of dependencies come first.
func ensureDependencies(ctx context.Context, p *Package, o Options) error {
	d := p.Description
	if len(d.Dependencies) == 0 {
		return nil
	}
	store, err := Records(o.Cluster)
	if err != nil {
		return err
	}
	for _, dep := range d.Dependencies {
		c, err := semver.NewConstraint(dep.Version)
		if err != nil {
			return fmt.Errorf("dependency %s: version range %q: %w", dep.Name, dep.Version, err)
		}
		recs, err := store.Deployments(ctx, "")
		if err != nil {
			return err
		}
		if satisfied(recs, dep.Name, c) {
			continue
		}
		sub, err := bundled(ctx, p, dep.Name)
		if err != nil {
			return err
		}
		if v, err := semver.NewVersion(sub.Description.Version); err != nil || !c.Check(v) {
			return fmt.Errorf("%w: %s %s: the bundled version is %s; rebuild with a matching one", ErrDependencyMissing, dep.Name, dep.Version, sub.Description.Version)
		}
		o.emit(Event{Step: "dependency", Component: dep.Name, Message: fmt.Sprintf("installing dependency %s %s (needs %s)", dep.Name, sub.Description.Version, dep.Version)})
		do := o
		do.Deployment, do.Values, do.Set = dep.Name, nil, nil
		if _, err := Install(ctx, sub, do); err != nil {
			return fmt.Errorf("installing dependency %s: %w", dep.Name, err)
		}
	}
	return nil
}

// satisfied reports whether a deployed record runs package name at a
// version in c.
func satisfied(recs []*release.Record, name string, c *semver.Constraints) bool {
	for _, r := range recs {
		if r.Package.Name != name || r.Status != release.StatusDeployed {
			continue
		}
		if v, err := semver.NewVersion(r.Package.Version); err == nil && c.Check(v) {
			return true
		}
	}
	return false
}

// bundled opens the dependency named name bundled in p.
func bundled(ctx context.Context, p *Package, name string) (*Package, error) {
	for _, root := range p.Archive.Dependencies() {
		if root.Annotations[bundle.AnnotationDependency] != name {
			continue
		}
		a, err := p.Archive.Sub(ctx, root)
		if err != nil {
			return nil, err
		}
		desc, err := a.Description(ctx)
		if err != nil {
			return nil, err
		}
		return &Package{Archive: a, Description: desc, Root: root, SignedBy: p.SignedBy}, nil
	}
	return nil, fmt.Errorf("%w: %s is not installed in the cluster and not bundled in %s %s: install it first, or rebuild with `skiff build --with-deps`",
		ErrDependencyMissing, name, p.Description.Name, p.Description.Version)
}

// requiredBy returns the deployments (other than ns/deployment) whose
// package depends on pkg.
func requiredBy(recs []*release.Record, ns, deployment, pkg string) []string {
	var out []string
	for _, r := range recs {
		if r.Status != release.StatusDeployed || (r.Namespace == ns && r.Deployment == deployment) {
			continue
		}
		for _, dep := range r.Dependencies {
			if f := strings.Fields(dep); len(f) > 0 && f[0] == pkg {
				out = append(out, r.Namespace+"/"+r.Deployment)
			}
		}
	}
	return out
}
