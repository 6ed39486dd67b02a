package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

const (
	kindChart     = "chart"
	kindManifests = "manifests"
)

// deploy brings every component of p to the cluster, recording progress in
// rec as it goes, and removes components prev had that p lacks. prev is
// what the cluster runs: the deployed revision, with what a later failed
// attempt left (see running), or nil for a first install. rec's status
// (pending-install or pending-upgrade) selects the lifecycle steps.
func (s *session) deploy(ctx context.Context, p *Package, rec, prev *release.Record, m images.Map) error {
	o := s.o
	d := p.Description
	uv, err := splitValues(d, o.Values, o.Set)
	if err != nil {
		return err
	}
	rec.Values = map[string]any{}
	for name, u := range uv {
		if len(u.record) > 0 {
			rec.Values[name] = u.record
		}
	}
	rec.ValueSources = valueSources(o.Values, uv, d)
	rec.SealedValues = nil
	for _, f := range o.Values {
		if f.Secret && len(f.Sealed) > 0 {
			rec.SealedValues = append(rec.SealedValues, release.SealedValues{Name: f.Name, Data: f.Sealed})
		}
	}
	if o.ReuseValues && prev != nil {
		// The reused values are recorded as prev recorded them (redacted).
		rec.ValueSources = append([]string{fmt.Sprintf("--reuse-values (revision %d)", prev.Revision)}, rec.ValueSources...)
		rec.SealedValues = append(slices.Clone(prev.SealedValues), rec.SealedValues...)
		for name, v := range prev.Clone().Values {
			pv, _ := v.(map[string]any)
			cur, _ := rec.Values[name].(map[string]any)
			if merged := mergeRecord(pv, cur); len(merged) > 0 {
				rec.Values[name] = merged
			}
		}
	}
	if err := checkNetworkPolicyName(d); err != nil {
		return err
	}
	rec.Components = nil
	s.cur = rec
	mergeNamespaces(rec, prev)
	post := relocator(m)
	lc, err := lifecycleOf(d, rec.Status == release.StatusPendingUpgrade)
	if err != nil {
		return err
	}
	if err := s.runSteps(ctx, p, lc.pre, rec, prev, post); err != nil {
		return err
	}
	names, err := releaseNames(d, o.Deployment, o.Namespace, prev)
	if err != nil {
		return err
	}
	for _, c := range d.Charts {
		o.emit(Event{Step: kindChart, Component: c.Name, Message: fmt.Sprintf("chart %s (%s %s)", c.Name, c.Chart, c.Version)})
		data, err := s.layer(ctx, p, c.Digest, c.Size, bundle.MediaTypeChart)
		if err != nil {
			return err
		}
		defaults, vals, err := splitChartValues(c, uv[c.Name])
		if err != nil {
			return err
		}
		if err := setImageValues(c, data, vals, m); err != nil {
			return err
		}
		ns := c.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		name := names[c.Name]
		if err := s.checkRelease(ctx, name, ns, prev); err != nil {
			return fmt.Errorf("chart %s: %w", c.Name, err)
		}
		// Recorded before Helm touches the cluster, so that uninstall and
		// rollback find a release that fails half way.
		rec.Components = append(rec.Components, release.Component{Name: c.Name, Kind: kindChart, Namespace: ns, HelmRelease: name})
		i := len(rec.Components) - 1
		if err := s.save(ctx, rec); err != nil {
			return err
		}
		if err := s.ensureNamespaces(ctx, []string{ns}); err != nil {
			return err
		}
		r, err := s.applyChart(ctx, data, name, ns, defaults, vals, keepCRDs(post), rec.Status == release.StatusPendingInstall)
		if err != nil {
			return fmt.Errorf("chart %s: %w%s", c.Name, err, s.notReady(context.WithoutCancel(ctx), name, ns))
		}
		rec.Components[i].HelmRevision = r.Revision
		if err := s.save(ctx, rec); err != nil {
			return err
		}
	}
	for _, ms := range d.Manifests {
		if lc.components[ms.Name] {
			continue // applied by a lifecycle step
		}
		if err := s.deployManifestSet(ctx, p, ms, rec, prev, post); err != nil {
			return err
		}
	}
	if err := s.runSteps(ctx, p, lc.post, rec, prev, post); err != nil {
		return err
	}
	if err := s.recordLifecycle(ctx, p, lc, rec, prev, post); err != nil {
		return err
	}
	if err := s.deployNetworkPolicies(ctx, d, rec, prev); err != nil {
		return err
	}
	return s.removeDropped(ctx, rec, prev)
}

// deployManifestSet relocates, applies and records one manifest set.
func (s *session) deployManifestSet(ctx context.Context, p *Package, ms bundle.ManifestSet, rec, prev *release.Record, post func([]byte) ([]byte, error)) error {
	s.o.emit(Event{Step: kindManifests, Component: ms.Name, Message: "manifests " + ms.Name})
	z, err := s.layer(ctx, p, ms.Digest, ms.Size, bundle.MediaTypeManifests)
	if err != nil {
		return err
	}
	y, err := unzstd(z)
	if err != nil {
		return fmt.Errorf("manifests %s: %w", ms.Name, err)
	}
	if y, err = post(y); err != nil {
		return fmt.Errorf("manifests %s: %w", ms.Name, err)
	}
	ns := ms.Namespace
	if ns == "" {
		ns = s.o.Namespace
	}
	rec.Components = append(rec.Components, release.Component{Name: ms.Name, Kind: kindManifests, Namespace: ns, Manifest: string(y)})
	comp := &rec.Components[len(rec.Components)-1]
	if err := s.applyManifests(ctx, comp, previous(prev, ms.Name), func() error { return s.save(ctx, rec) }); err != nil {
		return fmt.Errorf("manifests %s: %w", ms.Name, err)
	}
	return s.save(ctx, rec)
}

// applyChart installs or upgrades one Helm release: defaults are the
// package's values for the chart, vals the user's. An install (fresh)
// that finds the release of its own earlier, failed attempt removes it
// first, so nothing of that attempt (its values included) carries over.
func (s *session) applyChart(ctx context.Context, data []byte, name, ns string, defaults, vals map[string]any, post func([]byte) ([]byte, error), fresh bool) (*chart.Release, error) {
	o := s.o
	cur, err := s.charts.Get(ctx, name, ns)
	if err == nil && fresh && cur.Status != "deployed" {
		s.o.emit(Event{Step: "delete", Component: name, Message: fmt.Sprintf("removing Helm release %s (%s) of the failed install", name, cur.Status)})
		if err := s.charts.Uninstall(ctx, name, ns, chart.UninstallOptions{Wait: true, Timeout: o.Timeout}); err != nil && !errors.Is(err, chart.ErrReleaseNotFound) {
			return nil, err
		}
		err = chart.ErrReleaseNotFound
	}
	switch {
	case errors.Is(err, chart.ErrReleaseNotFound):
		return s.charts.Install(ctx, data, chart.InstallOptions{
			Release: name, Namespace: ns, Defaults: defaults, Values: vals, PostRender: post,
			Wait: !o.NoWait, Timeout: o.Timeout, CreateNamespace: true,
		})
	case err != nil:
		return nil, err
	default:
		return s.charts.Upgrade(ctx, data, chart.UpgradeOptions{
			Release: name, Namespace: ns, Defaults: defaults, Values: vals, ReuseValues: o.ReuseValues, PostRender: post,
			Wait: !o.NoWait, Timeout: o.Timeout, MaxHistory: o.MaxHistory, ApplyCRDs: true,
		})
	}
}

// applyManifests applies comp.Manifest, waits, records the objects and
// prunes what prev had that comp no longer has. Objects another owner
// holds are refused (unless --take-ownership); the objects are put in
// comp and record, when set, is called before anything is applied.
func (s *session) applyManifests(ctx context.Context, comp *release.Component, prev *release.Component, record func() error) error {
	o := s.o
	objs, err := kube.ParseObjects([]byte(comp.Manifest))
	if err != nil {
		return err
	}
	planned, err := s.kc.Refs(objs, comp.Namespace)
	if err != nil {
		return err
	}
	if err := s.checkObjects(ctx, planned); err != nil {
		return err
	}
	comp.Objects = toRecordRefs(planned)
	if record != nil {
		if err := record(); err != nil {
			return err
		}
	}
	if err := s.ensureNamespaces(ctx, namespacesOf(planned)); err != nil {
		return err
	}
	refs, err := s.kc.Apply(ctx, objs, kube.ApplyOptions{
		FieldManager: FieldManager, Namespace: comp.Namespace, Force: true,
		Labels: s.ownerLabels(),
	})
	if err != nil {
		return err
	}
	comp.Objects = toRecordRefs(refs)
	if !o.NoWait {
		o.emit(Event{Step: "wait", Component: comp.Name, Message: fmt.Sprintf("waiting for %d objects", len(refs))})
		// say which objects the wait is still waiting for, and why
		onStatus := func(ref kube.ObjectRef, status, msg string) {
			if status != "Current" {
				o.emit(Event{Step: "wait", Component: comp.Name, Message: fmt.Sprintf("waiting for %s: %s %s", ref, status, msg)})
			}
		}
		if err := s.kc.Wait(ctx, refs, kube.WaitOptions{Timeout: o.Timeout, OnStatus: onStatus}); err != nil {
			return err
		}
	}
	if prev != nil {
		if _, err := s.kc.Prune(ctx, toKubeRefs(prev.Objects), refs, s.deleteOptions()); err != nil {
			return fmt.Errorf("pruning: %w", err)
		}
	}
	return nil
}

// removeDropped removes the components prev had and rec lacks.
func (s *session) removeDropped(ctx context.Context, rec, prev *release.Record) error {
	if prev == nil {
		return nil
	}
	for _, c := range prev.Components {
		if previous(rec, c.Name) != nil {
			continue
		}
		s.o.emit(Event{Step: "delete", Component: c.Name, Message: "removing component " + c.Name + " (gone from the package)"})
		if err := s.removeComponent(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// remove removes every component of rec, last first, and the Jobs its
// failed steps kept.
func (s *session) remove(ctx context.Context, rec *release.Record) error {
	var errs []error
	if err := s.removeStepJobs(ctx, rec); err != nil {
		errs = append(errs, err)
	}
	for i := len(rec.Components) - 1; i >= 0; i-- {
		if err := s.removeComponent(ctx, rec.Components[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *session) removeComponent(ctx context.Context, c release.Component) error {
	if c.Deferred {
		return nil // recorded for a later step, never applied
	}
	switch c.Kind {
	case kindChart:
		err := s.charts.Uninstall(ctx, c.HelmRelease, c.Namespace, chart.UninstallOptions{Wait: true, Timeout: s.o.Timeout})
		if err != nil && !errors.Is(err, chart.ErrReleaseNotFound) {
			return fmt.Errorf("uninstalling chart %s: %w", c.Name, err)
		}
	case kindManifests:
		// CRDs stay (deleting one deletes every custom resource of its
		// kind); namespaces are removed, once empty, by Uninstall.
		var doomed []release.Object
		for _, o := range c.Objects {
			if !isCRD(o) && !(o.Group == "" && o.Kind == "Namespace") {
				doomed = append(doomed, o)
			}
		}
		if err := s.kc.Delete(ctx, toKubeRefs(doomed), s.deleteOptions()); err != nil {
			return fmt.Errorf("deleting manifests %s: %w", c.Name, err)
		}
	}
	return nil
}

// notReady explains a failed chart: the objects of its Helm release that
// are not ready, with the latest warnings of each and of its pods ("" when
// all are ready or the release cannot be read). Helm's own timeout error
// does not say which objects it waited for, nor why.
func (s *session) notReady(ctx context.Context, name, ns string) string {
	r, err := s.charts.Get(ctx, name, ns)
	if err != nil {
		return ""
	}
	objs, err := kube.ParseObjects([]byte(r.Manifest))
	if err != nil {
		return ""
	}
	refs, err := s.kc.Refs(objs, ns)
	if err != nil {
		return ""
	}
	var sts []kube.ObjectStatus
	for _, ref := range refs {
		if st := s.kc.Status(ctx, ref); st.Status != "Current" {
			sts = append(sts, st)
		}
	}
	if len(sts) == 0 {
		return ""
	}
	s.kc.Explain(ctx, sts)
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d of %d objects of Helm release %s not ready:", len(sts), len(refs), name)
	for _, st := range sts {
		fmt.Fprintf(&b, "\n  %s: %s", st.Ref, st.Status)
		if st.Message != "" {
			fmt.Fprintf(&b, ": %s", st.Message)
		}
		for _, w := range st.Warnings {
			fmt.Fprintf(&b, "\n    warning: %s", w)
		}
	}
	return b.String()
}

// deleteOptions await every deletion (also with --no-wait, which is
// about readiness) within the operation's timeout: an object still
// terminating would fail the next step that applies it again (a rollback
// right after an upgrade) or keep its namespace busy.
func (s *session) deleteOptions() kube.DeleteOptions {
	return kube.DeleteOptions{Wait: true, Timeout: s.o.Timeout}
}

// rollback re-applies target as a new revision on top of cur.
func (s *session) rollback(ctx context.Context, target, cur *release.Record) (*release.Record, error) {
	latest, err := s.store.Latest(ctx, target.Namespace, target.Deployment)
	if err != nil {
		return nil, err
	}
	rec := *target
	rec.Components = nil
	rec.Steps = nil // a rollback runs no steps
	rec.Revision = latest.Revision + 1
	rec.Status = release.StatusPendingRollback
	rec.Description = fmt.Sprintf("rollback to %d", target.Revision)
	rec.Namespaces = slices.Clone(target.Namespaces)
	mergeNamespaces(&rec, cur)
	s.cur = &rec
	if err := s.save(ctx, &rec); err != nil {
		return nil, err
	}
	fail := func(err error) (*release.Record, error) {
		rec.Status, rec.Description = release.StatusFailed, fmt.Sprintf("rollback to %d failed: %v", target.Revision, err)
		_ = s.save(context.WithoutCancel(ctx), &rec)
		return nil, err
	}
	for _, c := range target.Components {
		s.o.emit(Event{Step: c.Kind, Component: c.Name, Message: fmt.Sprintf("%s %s back to revision %d", c.Kind, c.Name, target.Revision)})
		rec.Components = append(rec.Components, c)
		rc := &rec.Components[len(rec.Components)-1]
		switch c.Kind {
		case kindChart:
			if err := s.save(ctx, &rec); err != nil {
				return fail(err)
			}
			if err := s.charts.Rollback(ctx, c.HelmRelease, c.Namespace, c.HelmRevision, chart.RollbackOptions{Wait: !s.o.NoWait, Timeout: s.o.Timeout}); err != nil {
				return fail(fmt.Errorf("chart %s: %w", c.Name, err))
			}
			r, err := s.charts.Get(ctx, c.HelmRelease, c.Namespace)
			if err != nil {
				return fail(err)
			}
			rc.HelmRevision = r.Revision
		case kindManifests:
			if c.Deferred {
				break
			}
			if err := s.applyManifests(ctx, rc, previous(cur, c.Name), func() error { return s.save(ctx, &rec) }); err != nil {
				return fail(fmt.Errorf("manifests %s: %w", c.Name, err))
			}
		}
	}
	if err := s.removeDropped(ctx, &rec, cur); err != nil {
		return fail(err)
	}
	rec.Status = release.StatusDeployed
	// What was deployed until now is superseded; a failed revision that an
	// --atomic upgrade rolls back over stays failed.
	dep, err := s.store.Deployed(ctx, target.Namespace, target.Deployment)
	if err != nil && !errors.Is(err, release.ErrNotFound) {
		return nil, err
	}
	if err := s.finish(ctx, &rec, dep); err != nil {
		return nil, err
	}
	return &rec, nil
}

func previous(r *release.Record, name string) *release.Component {
	if r == nil {
		return nil
	}
	i := slices.IndexFunc(r.Components, func(c release.Component) bool { return c.Name == name })
	if i < 0 {
		return nil
	}
	return &r.Components[i]
}

func (s *session) layer(ctx context.Context, p *Package, dgst digest.Digest, size int64, mediaType string) ([]byte, error) {
	return readLayer(ctx, p, dgst, size, mediaType)
}

func readLayer(ctx context.Context, p *Package, dgst digest.Digest, size int64, mediaType string) ([]byte, error) {
	b, err := content.FetchAll(ctx, p.Archive, ocispec.Descriptor{MediaType: mediaType, Digest: dgst, Size: size})
	if err != nil {
		return nil, fmt.Errorf("reading %s from the archive: %w", dgst, err)
	}
	return b, nil
}

// relocator rewrites image references to the loaded registry.
func relocator(m images.Map) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) { return images.Relocate(b, m, images.RelocateOptions{}) }
}

// unzstd decompresses a manifest set layer, bounded (bundle.ErrTooLarge).
func unzstd(b []byte) ([]byte, error) { return bundle.DecompressManifests(b) }
