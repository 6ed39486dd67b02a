package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// RollbackOptions configure [Rollback].
type RollbackOptions struct {
	Cluster Cluster
	// Revision to return to; 0 means the one deployed before the current.
	Revision int
	Timeout  time.Duration
	NoWait   bool
	Progress func(Event)
	// Logger receives Helm's logs; nil discards them.
	Logger *slog.Logger
}

// Rollback returns a deployment to an earlier revision as a new revision.
// It needs no archive: charts roll back through their Helm history and
// manifests are re-applied from the record.
func Rollback(ctx context.Context, ns, deployment string, o RollbackOptions) (*release.Record, error) {
	opts := Options{Deployment: deployment, Namespace: ns, Cluster: o.Cluster, Timeout: o.Timeout, NoWait: o.NoWait, Progress: o.Progress, Logger: o.Logger}
	opts.defaults(nil)
	s, err := open(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	cur, err := s.store.Deployed(ctx, opts.Namespace, deployment)
	if err != nil {
		return nil, err
	}
	latest, err := s.store.Latest(ctx, opts.Namespace, deployment)
	if err != nil {
		return nil, err
	}
	rev := o.Revision
	if rev == 0 {
		rev, err = s.rollbackTarget(ctx, cur, latest)
		if err != nil {
			return nil, err
		}
	}
	target, err := s.store.Get(ctx, opts.Namespace, deployment, rev)
	if err != nil {
		return nil, err
	}
	if target.Status == release.StatusFailed || target.Status.Pending() {
		return nil, fmt.Errorf("revision %d of %s is %s: roll back to a revision that was deployed (see `skiff history %s`)", rev, deployment, target.Status, deployment)
	}
	return s.rollback(ctx, target, running(latest, cur))
}

// rollbackTarget picks the revision a rollback without one returns to:
// the deployed revision when a later upgrade or rollback failed (the
// cluster runs that failed revision), otherwise the one deployed before
// the current.
func (s *session) rollbackTarget(ctx context.Context, cur, latest *release.Record) (int, error) {
	if latest.Revision > cur.Revision {
		return cur.Revision, nil
	}
	hist, err := s.store.History(ctx, cur.Namespace, cur.Deployment)
	if err != nil {
		return 0, err
	}
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Revision < cur.Revision && hist[i].Status == release.StatusSuperseded {
			return hist[i].Revision, nil
		}
	}
	return 0, fmt.Errorf("deployment %s has no earlier revision to roll back to: see `skiff history %s`", cur.Deployment, cur.Deployment)
}

// running is what the cluster runs when latest, newer than the deployed
// revision deployed, failed or was interrupted: latest's components, with
// the objects of both (deployed's components latest never reached
// included), so a rollback removes what either put there.
func running(latest, deployed *release.Record) *release.Record {
	if deployed == nil || latest.Revision == deployed.Revision {
		return latest
	}
	out := latest.Clone()
	for _, c := range deployed.Components {
		i := slices.IndexFunc(out.Components, func(o release.Component) bool { return o.Name == c.Name && o.Kind == c.Kind })
		if i < 0 {
			out.Components = append(out.Components, c)
			continue
		}
		for _, ob := range c.Objects {
			if !slices.Contains(out.Components[i].Objects, ob) {
				out.Components[i].Objects = append(out.Components[i].Objects, ob)
			}
		}
	}
	return out
}

// UninstallOptions configure [Uninstall].
type UninstallOptions struct {
	Cluster     Cluster
	KeepHistory bool
	// Force uninstalls even when other deployments depend on this one.
	Force bool
	// DeleteCRDs also deletes the CustomResourceDefinitions the deployment
	// brought (manifests, chart templates and crds/), and with them every
	// custom resource of their kinds in the cluster, whoever made it.
	// Without it CRDs are never deleted.
	DeleteCRDs bool
	Timeout    time.Duration
	NoWait     bool
	// AllowCommands lets preDelete steps run commands on this machine;
	// without it an uninstall that has any is refused (with Force, the
	// steps are skipped and the uninstall goes on).
	AllowCommands bool
	Progress      func(Event)
	// Logger receives Helm's logs; nil discards them.
	Logger *slog.Logger
}

// Uninstall removes everything a deployment created and its records
// (or marks them uninstalled with KeepHistory).
func Uninstall(ctx context.Context, ns, deployment string, o UninstallOptions) error {
	opts := Options{Deployment: deployment, Namespace: ns, Cluster: o.Cluster, Timeout: o.Timeout, NoWait: o.NoWait, AllowCommands: o.AllowCommands, Progress: o.Progress, Logger: o.Logger}
	opts.defaults(nil)
	s, err := open(ctx, opts)
	if err != nil {
		return err
	}
	defer s.close()
	latest, err := s.store.Latest(ctx, opts.Namespace, deployment)
	if err != nil {
		return err
	}
	if latest.Status == release.StatusUninstalled {
		return fmt.Errorf("deployment %s is already uninstalled (history kept): nothing to do", deployment)
	}
	if !o.Force {
		all, err := s.store.Deployments(ctx, "")
		if err != nil {
			return err
		}
		if by := requiredBy(all, opts.Namespace, deployment, latest.Package.Name); len(by) > 0 {
			return fmt.Errorf("deployment %s (package %s) is %w %v: uninstall those first, or pass --force", deployment, latest.Package.Name, ErrRequired, by)
		}
	}
	s.cur = latest
	// preDelete lifecycle steps run before anything is removed; with
	// --force a failing step does not stop the uninstall.
	if err := s.runPreDelete(ctx, latest); err != nil {
		if !o.Force {
			return fmt.Errorf("%w: nothing was removed; fix the cause, or pass --force to uninstall anyway", err)
		}
		opts.emit(Event{Step: "lifecycle", Message: "preDelete failed, continuing (--force): " + err.Error()})
	}
	// Components of every revision still pending or failed may have left
	// objects behind; remove the union, newest first.
	hist, err := s.store.History(ctx, opts.Namespace, deployment)
	if err != nil {
		return err
	}
	if n := len(hist); n > 0 && hist[n-1].Revision == latest.Revision {
		hist[n-1] = latest // with the components preDelete applied
	}
	comps, nss := leftBehind(hist)
	var crds []kube.ObjectRef
	if o.DeleteCRDs {
		if crds, err = s.recordCRDs(ctx, comps); err != nil {
			return err
		}
	}
	latest.Status, latest.Description = release.StatusUninstalling, "uninstall in progress"
	if err := s.save(ctx, latest); err != nil {
		return err
	}
	var errs []error
	if err := s.removeStepJobs(ctx, hist...); err != nil {
		errs = append(errs, err)
	}
	for _, c := range comps {
		opts.emit(Event{Step: "delete", Component: c.Name, Message: "removing " + c.Kind + " " + c.Name})
		if err := s.removeComponent(ctx, c); err != nil {
			errs = append(errs, err)
		}
	}
	if len(crds) > 0 && len(errs) == 0 {
		opts.emit(Event{Step: "delete", Message: fmt.Sprintf("--delete-crds: removing %d CustomResourceDefinitions and every custom resource of their kinds", len(crds))})
		if err := s.kc.Delete(ctx, crds, s.deleteOptions()); err != nil {
			errs = append(errs, fmt.Errorf("deleting CRDs: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		latest.Status, latest.Description = release.StatusFailed, "uninstall failed: "+err.Error()
		_ = s.save(context.WithoutCancel(ctx), latest)
		return err
	}
	if o.KeepHistory {
		latest.Status, latest.Description = release.StatusUninstalled, "uninstalled"
		if err := s.save(ctx, latest); err != nil {
			return err
		}
		// the records stay in the deployment's namespace
		nss = slices.DeleteFunc(nss, func(ns string) bool { return ns == opts.Namespace })
	} else if err := s.store.Purge(ctx, opts.Namespace, deployment); err != nil {
		return err
	}
	return s.removeNamespaces(ctx, nss)
}

// leftBehind lists, newest first, the components that the revisions of
// hist (oldest first) may have left in the cluster: those of the latest
// revision and of every revision that is not superseded (failed or
// interrupted ones), the objects of a component merged across them; and
// the namespaces any of them created, sorted.
func leftBehind(hist []*release.Record) ([]release.Component, []string) {
	var comps []release.Component
	idx := map[string]int{}
	var nss []string
	for i := len(hist) - 1; i >= 0; i-- {
		r := hist[i]
		for _, ns := range r.Namespaces {
			if !slices.Contains(nss, ns) {
				nss = append(nss, ns)
			}
		}
		if r.Status == release.StatusSuperseded && i != len(hist)-1 {
			continue
		}
		for j := len(r.Components) - 1; j >= 0; j-- {
			c := r.Components[j]
			k := c.Kind + "/" + c.Name
			if at, ok := idx[k]; ok {
				for _, ob := range c.Objects {
					if !slices.Contains(comps[at].Objects, ob) {
						comps[at].Objects = append(comps[at].Objects, ob)
					}
				}
				if comps[at].Deferred && !c.Deferred {
					comps[at].Deferred = false
				}
				continue
			}
			idx[k] = len(comps)
			c.Objects = slices.Clone(c.Objects)
			comps = append(comps, c)
		}
	}
	slices.Sort(nss)
	return comps, nss
}

// Records opens the release store of a cluster without taking a lock.
func Records(c Cluster) (*release.Store, error) {
	b, err := c.connect("", nil)
	if err != nil {
		return nil, err
	}
	return b.store(0), nil
}

// ObjectStatus is the readiness of one object of a deployment.
type ObjectStatus struct {
	Component string `json:"component"`
	Object    string `json:"object"`
	Status    string `json:"status"`
	Message   string `json:"message,omitempty"`
}

// ErrMissing: objects a deployment's record lists are not in the cluster.
var ErrMissing = errors.New("recorded objects missing")

// Status reports the readiness of every object a deployment's current
// revision owns. When some are missing it returns the record and the
// statuses with an error matching ErrMissing.
func Status(ctx context.Context, c Cluster, ns, deployment string) (*release.Record, []ObjectStatus, error) {
	b, err := c.connect(ns, nil)
	if err != nil {
		return nil, nil, err
	}
	kc, cc := b.kube, b.charts
	rec, err := b.store(0).Latest(ctx, ns, deployment)
	if err != nil {
		return nil, nil, err
	}
	var out []ObjectStatus
	for _, comp := range rec.Components {
		refs := toKubeRefs(comp.Objects)
		if comp.Kind == kindChart {
			r, err := cc.Get(ctx, comp.HelmRelease, comp.Namespace)
			if err != nil {
				out = append(out, ObjectStatus{Component: comp.Name, Object: "helm release " + comp.HelmRelease, Status: "NotFound", Message: err.Error()})
				continue
			}
			objs, err := kube.ParseObjects([]byte(r.Manifest))
			if err != nil {
				return nil, nil, err
			}
			crefs, err := kc.Refs(objs, comp.Namespace)
			if err != nil {
				return nil, nil, err
			}
			refs = append(refs, crefs...)
		}
		for _, ref := range refs {
			st := kc.Status(ctx, ref)
			out = append(out, ObjectStatus{Component: comp.Name, Object: ref.String(), Status: st.Status, Message: st.Message})
		}
	}
	var missing []string
	for _, o := range out {
		if o.Status == "NotFound" {
			missing = append(missing, o.Object)
		}
	}
	if len(missing) > 0 {
		return rec, out, fmt.Errorf("%w: %d objects of deployment %s (revision %d) are not in the cluster: %s: `skiff rollback %s %d -n %s` applies the revision again",
			ErrMissing, len(missing), deployment, rec.Revision, strings.Join(missing, ", "), deployment, rec.Revision, ns)
	}
	return rec, out, nil
}

// namespaced guesses whether a kind is namespaced for objects a chart
// rendered without a namespace (Helm fills in the release namespace).
func namespaced(kind string) bool {
	switch kind {
	case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
		"PriorityClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService", "Node":
		return false
	}
	return true
}

// ValuesOptions configure [GetValues].
type ValuesOptions struct {
	// Revision to read; 0 means the latest.
	Revision int
	// ShowSecrets shows the values given with --set; otherwise they are
	// [Redacted].
	ShowSecrets bool
	// Decrypt, when set, decrypts the encrypted values files kept in the
	// record (with the user's identity): their values are shown, the
	// rest of them stays [Redacted].
	Decrypt func(name string, sealed []byte) ([]byte, error)
}

// GetValues returns the user values a revision of a deployment was given,
// keyed by chart name (the shape of a -f file). They are read from each
// chart's Helm release; the values the record marks redacted (encrypted
// files, --set) stay redacted unless o.ShowSecrets. A value reused with
// --reuse-values shows as given.
func GetValues(ctx context.Context, c Cluster, ns, deployment string, o ValuesOptions) (*release.Record, map[string]any, error) {
	b, err := c.connect(ns, nil)
	if err != nil {
		return nil, nil, err
	}
	store := b.store(0)
	var rec *release.Record
	if o.Revision > 0 {
		rec, err = store.Get(ctx, ns, deployment, o.Revision)
	} else {
		rec, err = store.Latest(ctx, ns, deployment)
	}
	if err != nil {
		return nil, nil, err
	}
	cc := b.charts
	out, real := map[string]any{}, map[string]any{}
	for _, comp := range rec.Components {
		if comp.Kind != kindChart {
			continue
		}
		vals, err := cc.Values(ctx, comp.HelmRelease, comp.Namespace, comp.HelmRevision)
		if err != nil {
			return nil, nil, fmt.Errorf("chart %s: %w", comp.Name, err)
		}
		if len(vals) == 0 {
			continue
		}
		shown := vals
		if !o.ShowSecrets {
			recorded, _ := rec.Values[comp.Name].(map[string]any)
			shown = maskRedacted(vals, recorded)
		}
		out[comp.Name] = shown
		real[comp.Name] = vals
	}
	if o.Decrypt != nil && !o.ShowSecrets {
		for _, sv := range rec.SealedValues {
			plain, err := o.Decrypt(sv.Name, sv.Data)
			if err != nil {
				return nil, nil, fmt.Errorf("decrypting the values of %s: %w", sv.Name, err)
			}
			var top map[string]any
			if err := yaml.Unmarshal(plain, &top); err != nil {
				return nil, nil, fmt.Errorf("values file %s: %w", sv.Name, err)
			}
			for name, sec := range top {
				sm, _ := sec.(map[string]any)
				shown, _ := out[name].(map[string]any)
				realv, _ := real[name].(map[string]any)
				if sm != nil && shown != nil {
					out[name] = unmask(shown, realv, sm)
				}
			}
		}
	}
	return rec, out, nil
}

// unmask copies into shown the real values at every path of file.
func unmask(shown, real, file map[string]any) map[string]any {
	for k, fv := range file {
		rv, ok := real[k]
		if !ok {
			continue
		}
		fm, fok := fv.(map[string]any)
		rm, rok := rv.(map[string]any)
		sm, sok := shown[k].(map[string]any)
		if fok && rok && sok {
			shown[k] = unmask(sm, rm, fm)
			continue
		}
		shown[k] = rv
	}
	return shown
}

// maskRedacted returns vals with every value the record marks [Redacted]
// replaced.
func maskRedacted(vals, recorded map[string]any) map[string]any {
	out := make(map[string]any, len(vals))
	for k, v := range vals {
		out[k] = v
	}
	for k, r := range recorded {
		if _, ok := out[k]; !ok {
			continue
		}
		switch r := r.(type) {
		case map[string]any:
			if sub, ok := out[k].(map[string]any); ok {
				out[k] = maskRedacted(sub, r)
			} else {
				out[k] = Redacted
			}
		case string:
			if r == Redacted {
				out[k] = Redacted
			}
		}
	}
	return out
}

// TestOptions configure [Test].
type TestOptions struct {
	// Timeout bounds each test hook; if <= 0, 5 minutes is used.
	Timeout time.Duration
	// Logs, when set, receives the logs of the test pods.
	Logs     io.Writer
	Progress func(Event)
}

// TestResult is the outcome of one chart's tests.
type TestResult struct {
	Component string
	Hooks     []chart.TestHook
	Err       error
}

// ErrTestsFailed: a test hook of a deployment failed.
var ErrTestsFailed = errors.New("tests failed")

// Test runs the test hooks of every chart of a deployment's deployed
// revision (their images were relocated with the rest at install). It
// runs every chart's tests, then returns ErrTestsFailed if any failed.
func Test(ctx context.Context, c Cluster, ns, deployment string, o TestOptions) ([]TestResult, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	b, err := c.connect(ns, nil)
	if err != nil {
		return nil, err
	}
	rec, err := b.store(0).Deployed(ctx, ns, deployment)
	if err != nil {
		return nil, err
	}
	var out []TestResult
	var failed []string
	for _, comp := range rec.Components {
		if comp.Kind != kindChart {
			continue
		}
		if o.Progress != nil {
			o.Progress(Event{Step: "test", Component: comp.Name, Message: "testing chart " + comp.Name})
		}
		hooks, err := b.charts.Test(ctx, comp.HelmRelease, comp.Namespace, chart.TestOptions{Timeout: o.Timeout, Logs: o.Logs})
		out = append(out, TestResult{Component: comp.Name, Hooks: hooks, Err: err})
		if err != nil {
			if ctx.Err() != nil {
				return out, err
			}
			failed = append(failed, comp.Name)
		}
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("deployment %s: %w in %s: see the test pods' logs (skiff test --logs) and events", deployment, ErrTestsFailed, strings.Join(failed, ", "))
	}
	return out, nil
}
