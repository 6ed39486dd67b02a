package install

import (
	"cmp"
	"context"
	"fmt"
	"io"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/netpol"
	"github.com/skiffhq/skiff/internal/release"
)

// deployNetworkPolicies applies the generated NetworkPolicies of a
// package that enables them, as the manifests component
// netpol.Component, so upgrade prunes them and uninstall deletes them
// like any other manifests. They cover every namespace rec's components
// put objects in.
func (s *session) deployNetworkPolicies(ctx context.Context, d *bundle.Description, rec, prev *release.Record) error {
	if d.Spec == nil || !netpol.Enabled(d.Spec.NetworkPolicy) {
		return nil
	}
	y, err := netpol.Generate(d.Spec.NetworkPolicy, recordNamespaces(rec), s.o.Deployment)
	if err != nil {
		return err
	}
	s.o.emit(Event{Step: kindManifests, Component: netpol.Component, Message: "network policies"})
	rec.Components = append(rec.Components, release.Component{Name: netpol.Component, Kind: kindManifests, Namespace: s.o.Namespace, Manifest: string(y)})
	comp := &rec.Components[len(rec.Components)-1]
	if err := s.applyManifests(ctx, comp, previous(prev, netpol.Component), func() error { return s.save(ctx, rec) }); err != nil {
		return fmt.Errorf("network policies: %w", err)
	}
	return s.save(ctx, rec)
}

// checkNetworkPolicyName refuses a package whose own component takes the
// name of the generated one.
func checkNetworkPolicyName(d *bundle.Description) error {
	if d.Spec == nil || !netpol.Enabled(d.Spec.NetworkPolicy) {
		return nil
	}
	for _, c := range d.Charts {
		if c.Name == netpol.Component {
			return fmt.Errorf("chart component %q has the name of the generated network policies: rename it in the package spec", c.Name)
		}
	}
	for _, m := range d.Manifests {
		if m.Name == netpol.Component {
			return fmt.Errorf("manifests component %q has the name of the generated network policies: rename it in the package spec", m.Name)
		}
	}
	return nil
}

// recordNamespaces lists the namespaces the components of rec use.
func recordNamespaces(rec *release.Record) []string {
	var nss []string
	for _, c := range rec.Components {
		if c.Name == netpol.Component {
			continue
		}
		nss = append(nss, c.Namespace)
		for _, o := range c.Objects {
			if o.Namespace != "" {
				nss = append(nss, o.Namespace)
			}
		}
	}
	return nss
}

// dryRunNetworkPolicies writes the policies an install would generate.
func dryRunNetworkPolicies(w io.Writer, d *bundle.Description, o Options) error {
	if d.Spec == nil || !netpol.Enabled(d.Spec.NetworkPolicy) {
		return nil
	}
	var nss []string
	for _, c := range d.Charts {
		nss = append(nss, cmp.Or(c.Namespace, o.Namespace))
	}
	for _, m := range d.Manifests {
		nss = append(nss, cmp.Or(m.Namespace, o.Namespace))
	}
	y, err := netpol.Generate(d.Spec.NetworkPolicy, nss, o.Deployment)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# %s\n%s\n", netpol.Component, y)
	return nil
}
