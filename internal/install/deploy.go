package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/release"
)

// FieldManager is the server-side apply field manager of everything Skiff
// applies itself.
const FieldManager = "skiff"

// Labels put on every object of plain manifest components: they say
// which deployment (name and namespace) owns it.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	LabelDeployment = "skiff.dev/deployment"
	LabelNamespace  = "skiff.dev/namespace"
)

// Sentinel errors callers branch on.
var (
	// ErrOwned: an object or Helm release the operation would change
	// belongs to another deployment or was not made by Skiff.
	ErrOwned            = errors.New("owned by someone else")
	ErrAlreadyInstalled = errors.New("already installed")
	ErrNotInstalled     = errors.New("not installed")
)

// Cluster names the cluster to work on.
type Cluster struct {
	Kubeconfig string
	Context    string
	// backend, when set (tests), replaces the connection to a cluster.
	backend *backend
}

// Options configure Install and Upgrade.
type Options struct {
	// Deployment names this installation; defaults to the package name.
	Deployment string
	// Namespace is where records live and components without their own
	// namespace go; defaults to "default".
	Namespace string
	Cluster   Cluster
	// Load configures pushing the images; Load.Registry is required.
	Load LoadOptions
	// SkipLoad assumes the images are already in Load.Registry.
	SkipLoad bool
	Values   []ValuesFile
	Set      []string
	// Timeout bounds the readiness wait of each component; if <= 0,
	// 5 minutes is used.
	Timeout time.Duration
	// NoWait skips readiness waits.
	NoWait bool
	// Atomic undoes a failed install (uninstall) or upgrade (roll back).
	Atomic bool
	// ReuseValues (Upgrade) keeps the values the deployed revision was
	// given, with this operation's values over them. ResetValues drops
	// them. Without either, an upgrade that gives no values while the
	// deployed revision had some, or no encrypted values file while it
	// had one, is refused: values are never kept or dropped silently.
	ReuseValues bool
	ResetValues bool
	// TakeOwnership adopts objects and Helm releases that exist but
	// belong to another deployment or were not made by Skiff; without it
	// they are refused.
	TakeOwnership bool
	// AllowCommands lets lifecycle steps run commands on this machine
	// (run steps); without it an operation that has any is refused before
	// it changes anything.
	AllowCommands bool
	// KubeVersion is the Kubernetes version dry runs and diffs render for;
	// empty means the version the package was built for.
	KubeVersion string
	// InstallMissing makes Upgrade install a deployment that does not
	// exist (or was uninstalled with its history kept).
	InstallMissing bool
	// AllowDowngrade lets Upgrade install an older package version than
	// the deployed one (a replayed old package is refused otherwise).
	AllowDowngrade bool
	// DryRun renders and relocates everything and writes the result to
	// DryRunOut without touching the cluster or the registry.
	DryRun    bool
	DryRunOut io.Writer
	// MaxHistory bounds the revisions kept; if <= 0, 10 is used.
	MaxHistory int
	Progress   func(Event)
	// Logger receives Helm's logs; nil discards them.
	Logger *slog.Logger
	// Gate, when set, is called before Install or Upgrade touches the
	// registry or the cluster (dry runs included); an error refuses the
	// operation. The vulnerability gate plugs in here.
	Gate func(ctx context.Context, p *Package) error
}

// Event reports a step of an operation.
type Event struct {
	Step      string // "load", "chart", "manifests", "wait", "record", "prune", "delete"
	Component string
	Message   string
	Push      *oci.Event
}

// Result reports an operation.
type Result struct {
	Record *release.Record
	Load   *LoadResult
}

type session struct {
	kc     cluster
	charts releaser
	store  *release.Store
	unlock func(context.Context) error
	o      Options
	// createdNS: open created the deployment's namespace.
	createdNS bool
	// cur is the record under construction; namespaces created are
	// recorded in it.
	cur *release.Record
	// ws is where command steps run; removed by close.
	ws *workspace
}

func (o *Options) defaults(d *bundle.Description) {
	if o.Deployment == "" && d != nil {
		o.Deployment = d.Name
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.MaxHistory <= 0 {
		o.MaxHistory = 10
	}
}

func (o *Options) emit(e Event) {
	if o.Progress != nil {
		o.Progress(e)
	}
}

// open connects to the cluster named by o.Cluster and takes the lock of
// o.Deployment in o.Namespace; the session keeps o.
func open(ctx context.Context, o Options) (*session, error) {
	b, err := o.Cluster.connect(o.Namespace, &o)
	if err != nil {
		return nil, err
	}
	_, err = b.kube.Get(ctx, namespaceRef(o.Namespace))
	if err != nil && !errors.Is(err, kube.ErrNotFound) {
		return nil, err
	}
	created := err != nil
	if err := b.kube.EnsureNamespace(ctx, o.Namespace); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	unlock, err := b.kube.Lock(ctx, o.Namespace, "skiff-"+o.Deployment, fmt.Sprintf("%s/%d", host, os.Getpid()), 10*time.Minute)
	if err != nil {
		return nil, err
	}
	return &session{kc: b.kube, charts: b.charts, store: b.store(o.MaxHistory), unlock: unlock, o: o, createdNS: created}, nil
}

// begin is what Install and Upgrade do first: apply defaults to o, run
// the gate, then either do the dry run or install missing dependencies
// and open a session. A nil session means the operation is over: err is
// its outcome (nil after a successful dry run).
func begin(ctx context.Context, p *Package, o *Options, upgrade bool) (*session, error) {
	o.defaults(p.Description)
	// Values that do not route or parse fail before anything is recorded.
	if _, err := splitValues(p.Description, o.Values, o.Set); err != nil {
		return nil, err
	}
	if o.Gate != nil {
		if err := o.Gate(ctx, p); err != nil {
			return nil, err
		}
	}
	if o.DryRun {
		return nil, dryRun(ctx, p, *o, upgrade)
	}
	lc, err := lifecycleOf(p.Description, upgrade)
	if err != nil {
		return nil, err
	}
	if err := checkCommands(o.AllowCommands, lc.pre, lc.post); err != nil {
		return nil, err
	}
	if err := ensureDependencies(ctx, p, *o); err != nil {
		return nil, err
	}
	return open(ctx, *o)
}

func (s *session) close() {
	s.ws.remove()
	if s.unlock != nil {
		_ = s.unlock(context.Background())
	}
}

// Install installs a package as a new deployment.
func Install(ctx context.Context, p *Package, o Options) (*Result, error) {
	s, err := begin(ctx, p, &o, false)
	if s == nil {
		return nil, err
	}
	defer s.close()
	rev := 1
	var leftover *release.Record // what an earlier, failed attempt put in the cluster
	latest, err := s.store.Latest(ctx, o.Namespace, o.Deployment)
	switch {
	case errors.Is(err, release.ErrNotFound):
	case err != nil:
		return nil, err
	case latest.Status == release.StatusPendingInstall || latest.Status == release.StatusFailed && latest.Revision == 1:
		// An interrupted or failed first install: resume it in place;
		// what it left and this attempt does not bring is removed.
		rev, leftover = latest.Revision, latest
	case latest.Status == release.StatusUninstalled:
		rev = latest.Revision + 1
	default:
		return nil, fmt.Errorf("deployment %s in namespace %s: %w (revision %d, %s): use `skiff upgrade` to change it or `skiff uninstall` first",
			o.Deployment, o.Namespace, ErrAlreadyInstalled, latest.Revision, latest.Status)
	}
	if err := s.checkKubeVersion(ctx, p); err != nil {
		return nil, err
	}
	m, lr, err := s.load(ctx, p)
	if err != nil {
		return nil, err
	}
	rec := newRecord(p, o, rev, release.StatusPendingInstall, m)
	if s.createdNS {
		rec.Namespaces = []string{o.Namespace}
	}
	if err := s.save(ctx, rec); err != nil {
		return nil, err
	}
	if err := s.deploy(ctx, p, rec, leftover, m); err != nil {
		rec.Status, rec.Description = release.StatusFailed, "install failed: "+err.Error()
		_ = s.save(context.WithoutCancel(ctx), rec)
		if o.Atomic {
			o.emit(Event{Step: "delete", Message: "--atomic: removing what the failed install created"})
			if uerr := s.remove(context.WithoutCancel(ctx), running(rec, leftover)); uerr != nil {
				return nil, fmt.Errorf("%w\n--atomic: removing what the failed install created failed too: %w: run `skiff uninstall %s -n %s`", err, uerr, o.Deployment, o.Namespace)
			}
			_ = s.store.Purge(context.WithoutCancel(ctx), o.Namespace, o.Deployment)
			return nil, fmt.Errorf("%w\n--atomic: removed what the failed install created; deployment %s is not installed", err, o.Deployment)
		}
		return nil, err
	}
	rec.Status, rec.Description = release.StatusDeployed, "install complete"
	if err := s.save(ctx, rec); err != nil {
		return nil, err
	}
	return &Result{Record: rec, Load: lr}, nil
}

// Upgrade moves a deployment to another package version (or the same
// version with other values).
func Upgrade(ctx context.Context, p *Package, o Options) (*Result, error) {
	if o.InstallMissing && !o.DryRun {
		o.defaults(p.Description)
		b, err := o.Cluster.connect(o.Namespace, &o)
		if err != nil {
			return nil, err
		}
		latest, err := b.store(0).Latest(ctx, o.Namespace, o.Deployment)
		if errors.Is(err, release.ErrNotFound) || err == nil && latest.Status == release.StatusUninstalled {
			return Install(ctx, p, o)
		}
		if err != nil {
			return nil, err
		}
	}
	s, err := begin(ctx, p, &o, true)
	if s == nil {
		return nil, err
	}
	defer s.close()
	latest, err := s.store.Latest(ctx, o.Namespace, o.Deployment)
	if errors.Is(err, release.ErrNotFound) {
		return nil, fmt.Errorf("deployment %s in namespace %s: %w: use `skiff install`", o.Deployment, o.Namespace, ErrNotInstalled)
	}
	if err != nil {
		return nil, err
	}
	prev, err := s.store.Deployed(ctx, o.Namespace, o.Deployment)
	if err != nil && !errors.Is(err, release.ErrNotFound) {
		return nil, err
	}
	if p.Description.Name != latest.Package.Name {
		return nil, fmt.Errorf("deployment %s runs package %s, not %s: install %s under another --name", o.Deployment, latest.Package.Name, p.Description.Name, p.Description.Name)
	}
	if err := checkValues(prev, o); err != nil {
		return nil, err
	}
	if prev != nil && !o.AllowDowngrade {
		if err := checkDowngrade(prev.Package.Version, p.Description.Version); err != nil {
			return nil, fmt.Errorf("deployment %s runs %s %s: %w", o.Deployment, prev.Package.Name, prev.Package.Version, err)
		}
	}
	if err := s.checkKubeVersion(ctx, p); err != nil {
		return nil, err
	}
	m, lr, err := s.load(ctx, p)
	if err != nil {
		return nil, err
	}
	rec := newRecord(p, o, latest.Revision+1, release.StatusPendingUpgrade, m)
	if err := s.save(ctx, rec); err != nil {
		return nil, err
	}
	if err := s.deploy(ctx, p, rec, running(latest, prev), m); err != nil {
		rec.Status, rec.Description = release.StatusFailed, "upgrade failed: "+err.Error()
		_ = s.save(context.WithoutCancel(ctx), rec)
		if o.Atomic && prev != nil {
			o.emit(Event{Step: "rollback", Message: fmt.Sprintf("--atomic: rolling back to revision %d", prev.Revision)})
			rb, rerr := s.rollback(context.WithoutCancel(ctx), prev, running(rec, prev))
			if rerr != nil {
				return nil, fmt.Errorf("%w\n--atomic: rolling back to revision %d failed too: %w: see `skiff history %s`", err, prev.Revision, rerr, o.Deployment)
			}
			return nil, fmt.Errorf("%w\n--atomic: rolled back to revision %d (%s %s) as revision %d; the failed upgrade is revision %d",
				err, prev.Revision, prev.Package.Name, prev.Package.Version, rb.Revision, rec.Revision)
		}
		return nil, err
	}
	rec.Status, rec.Description = release.StatusDeployed, "upgrade complete"
	if err := s.finish(ctx, rec, prev); err != nil {
		return nil, err
	}
	return &Result{Record: rec, Load: lr}, nil
}

// finish marks rec deployed and prev superseded.
func (s *session) finish(ctx context.Context, rec, prev *release.Record) error {
	if prev != nil && prev.Revision != rec.Revision {
		prev.Status = release.StatusSuperseded
		if err := s.save(ctx, prev); err != nil {
			return err
		}
	}
	return s.save(ctx, rec)
}

func (s *session) load(ctx context.Context, p *Package) (images.Map, *LoadResult, error) {
	o := s.o
	if o.SkipLoad {
		dest, err := ParseRegistry(o.Load.Registry, o.Load.Flatten)
		if err != nil {
			return nil, nil, err
		}
		m, err := Relocation(p.Description, dest)
		return m, nil, err
	}
	lo := o.Load
	lo.Progress = func(e oci.Event) { o.emit(Event{Step: "load", Push: &e}) }
	lr, err := Load(ctx, p, lo)
	if err != nil {
		return nil, nil, err
	}
	return lr.Map, lr, nil
}

// ErrValuesDropped: an upgrade would drop the values the deployed
// revision was given without saying so.
var ErrValuesDropped = errors.New("values would be dropped")

// checkValues applies the values rule of an upgrade from prev: the
// package defaults plus what this operation gives, unless --reuse-values;
// dropping values of prev needs --reset-values when this operation gives
// none, or no encrypted file while prev had one.
func checkValues(prev *release.Record, o Options) error {
	if o.ReuseValues && o.ResetValues {
		return errors.New("--reuse-values and --reset-values contradict each other: pass one")
	}
	if prev == nil || o.ReuseValues || o.ResetValues {
		return nil
	}
	had := prev.ValueSources
	if len(had) == 0 && len(prev.Values) > 0 {
		had = []string{"values recorded before value sources were"} // records of older versions
	}
	if len(had) == 0 {
		return nil
	}
	var encrypted []string
	for _, src := range had {
		if strings.HasSuffix(src, "(encrypted)") {
			encrypted = append(encrypted, src)
		}
	}
	givesEncrypted := slices.ContainsFunc(o.Values, func(v ValuesFile) bool { return v.Secret })
	switch {
	case len(o.Values) == 0 && len(o.Set) == 0:
		return fmt.Errorf("%w: revision %d of %s was given values (%s) and this upgrade gives none: pass them again, --reuse-values to keep them, or --reset-values to use only the package's defaults",
			ErrValuesDropped, prev.Revision, prev.Deployment, strings.Join(had, ", "))
	case len(encrypted) > 0 && !givesEncrypted:
		return fmt.Errorf("%w: revision %d of %s was given encrypted values (%s) and this upgrade gives no encrypted file: pass it again with -f, --reuse-values to keep the previous values, or --reset-values to drop them",
			ErrValuesDropped, prev.Revision, prev.Deployment, strings.Join(encrypted, ", "))
	}
	return nil
}

// ErrDowngrade: an upgrade would install an older package version.
var ErrDowngrade = errors.New("downgrade")

// checkDowngrade refuses moving from version from to an older version to.
// Versions that do not parse as semantic versions are not compared.
func checkDowngrade(from, to string) error {
	a, err1 := semver.StrictNewVersion(from)
	b, err2 := semver.StrictNewVersion(to)
	if err1 != nil || err2 != nil || !b.LessThan(a) {
		return nil
	}
	return fmt.Errorf("%w: %s is older than %s: pass --allow-downgrade if you mean it (or `skiff rollback` to return to a recorded revision)", ErrDowngrade, to, from)
}

func newRecord(p *Package, o Options, rev int, st release.Status, m images.Map) *release.Record {
	d := p.Description
	now := time.Now().UTC()
	rec := &release.Record{
		Deployment: o.Deployment, Namespace: o.Namespace, Revision: rev, Status: st,
		Package: release.Package{Name: d.Name, Version: d.Version, Root: p.Root.Digest.String()},
		Images:  map[string]string(m), Created: now, Updated: now,
		Registry: o.Load.Registry, Flatten: o.Load.Flatten,
	}
	for _, dep := range d.Dependencies {
		rec.Dependencies = append(rec.Dependencies, dep.Name+" "+dep.Version)
	}
	return rec
}

// ErrReleaseName: a chart's Helm release name collides or changes.
var ErrReleaseName = errors.New("helm release name")

// maxReleaseName is Helm's limit on release names.
const maxReleaseName = 53

// releaseNames picks the Helm release name of every chart of d (keyed by
// component name): the spec's releaseName; else the name prev recorded
// (names never change under a deployment); else the deployment name for a
// chart named like the deployment, and DEPLOYMENT-CHART otherwise, so
// names do not double (cert-manager-cert-manager-webhook). A name over 53 characters is cut
// and given a hash of the full name. Two charts with one name in one
// namespace are refused.
func releaseNames(d *bundle.Description, deployment, namespace string, prev *release.Record) (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]string{} // namespace/name -> component
	for _, c := range d.Charts {
		name := c.Release
		recorded := ""
		if pc := previous(prev, c.Name); pc != nil && pc.Kind == kindChart {
			recorded = pc.HelmRelease
		}
		switch {
		case name != "" && recorded != "" && name != recorded:
			return nil, fmt.Errorf("%w: chart %s runs as Helm release %s, but the package names it %s: a release cannot be renamed in place; uninstall and install again, or keep releaseName %s",
				ErrReleaseName, c.Name, recorded, name, recorded)
		case name == "" && recorded != "":
			name = recorded
		case name == "":
			name = defaultReleaseName(deployment, c.Name)
		}
		ns := c.Namespace
		if ns == "" {
			ns = namespace
		}
		if other, ok := seen[ns+"/"+name]; ok {
			return nil, fmt.Errorf("%w: charts %s and %s would both be Helm release %s in namespace %s: set releaseName on one of them in skiff.yaml", ErrReleaseName, other, c.Name, name, ns)
		}
		seen[ns+"/"+name] = c.Name
		out[c.Name] = name
	}
	return out, nil
}

func defaultReleaseName(deployment, component string) string {
	name := deployment + "-" + component
	if component == deployment {
		name = deployment
	}
	if len(name) > maxReleaseName {
		sum := sha256.Sum256([]byte(name))
		name = strings.TrimRight(name[:maxReleaseName-6], "-") + "-" + hex.EncodeToString(sum[:])[:5]
	}
	return name
}

// save stores rec: an update of its revision, or a new revision.
func (s *session) save(ctx context.Context, rec *release.Record) error {
	err := s.store.Update(ctx, rec)
	if errors.Is(err, release.ErrNotFound) {
		return s.store.Create(ctx, rec)
	}
	return err
}

func toRecordRefs(refs []kube.ObjectRef) []release.Object {
	out := make([]release.Object, len(refs))
	for i, r := range refs {
		out[i] = release.Object{Group: r.Group, Version: r.Version, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
	}
	return out
}

func toKubeRefs(objs []release.Object) []kube.ObjectRef {
	out := make([]kube.ObjectRef, len(objs))
	for i, r := range objs {
		out[i] = kube.ObjectRef{Group: r.Group, Version: r.Version, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
	}
	return out
}
