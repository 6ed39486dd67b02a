// Package doctor checks an air-gapped site for the problems that break it
// quietly: certificates running out, clocks drifting apart, workloads
// whose images are not in the site's registry, a registry that is down or
// out of disk, and an unhealthy hub. Each check is a small function that
// returns results with a severity and a fix.
package doctor

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/oci"
)

// Severity grades a result.
type Severity string

// Severities, from good to bad.
const (
	OK   Severity = "ok"
	Warn Severity = "warn"
	Fail Severity = "fail"
)

func (s Severity) rank() int {
	switch s {
	case Warn:
		return 1
	case Fail:
		return 2
	}
	return 0
}

// Result is one finding of a check.
type Result struct {
	// Check names the check ("certificates", "clock", "images", ...).
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	// Subject is what the finding is about ("Secret demo/web-tls",
	// "node worker-1"); empty for a check's summary.
	Subject string `json:"subject,omitempty"`
	Message string `json:"message"`
	// Fix says what to do about a warn or fail.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Results []Result `json:"results"`
	OK      int      `json:"ok"`
	Warn    int      `json:"warn"`
	Fail    int      `json:"fail"`
}

// Failed reports whether any result failed.
func (r *Report) Failed() bool { return r.Fail > 0 }

// Options configure Run. The zero value checks the cluster of the default
// kubeconfig.
type Options struct {
	// Kube is the cluster to check; nil means connect with Kubeconfig
	// and Context.
	Kube       *kube.Client
	Kubeconfig string
	Context    string
	// Namespace limits the Secret and workload checks to one namespace;
	// empty means all.
	Namespace string
	// Registry (HOST[:PORT][/PREFIX]) is the site's registry: its /v2/ is
	// checked and every workload image must be in it. Empty skips both.
	Registry string
	Remote   oci.RemoteOptions
	// RegistryRoot is the storage directory of a local registry whose
	// free disk space is checked; empty skips the check.
	RegistryRoot string
	// DiskWarnPercent and DiskFailPercent are the free space, in percent
	// of the file system, below which the disk check warns and fails; 0
	// means DefaultDiskWarnPercent and DefaultDiskFailPercent, a negative
	// value never warns (fails).
	DiskWarnPercent, DiskFailPercent float64
	// DiskSpace measures the free and total bytes of the file system
	// holding dir; nil means the operating system's figures.
	DiskSpace func(dir string) (free, total uint64, err error)
	// Hub is the base URL of a Skiff hub whose /healthz is checked; empty
	// skips the check.
	Hub string
	// HTTPClient reaches the hub; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Days is the warning horizon for certificates; if <= 0, 30.
	Days int
	// MaxSkew is the clock difference that warns; if <= 0, 10 s. A skew
	// above 5 minutes fails (tokens and certificates stop validating).
	MaxSkew time.Duration
	// Concurrency bounds parallel registry requests; if <= 0, 8.
	Concurrency int
	// Now returns this host's time; nil means time.Now.
	Now func() time.Time
	// Checks are the checks to run; nil means Checks().
	Checks []Check
}

// Check is one named check.
type Check struct {
	Name string
	// Cluster marks checks that need the cluster; they are skipped (with
	// one failure) when it cannot be reached.
	Cluster bool
	Run     func(ctx context.Context, e *Env) []Result
}

// Env is what checks run against.
type Env struct {
	Options
	// Kube is nil when the cluster is unreachable (only checks without
	// Cluster run then).
	Kube *kube.Client
}

// failSkew is the clock skew that fails outright.
const failSkew = 5 * time.Minute

// Checks returns the default checks, in the order they run.
func Checks() []Check {
	return []Check{
		{Name: "certificates", Cluster: true, Run: checkSecretCerts},
		{Name: "ca-bundles", Cluster: true, Run: checkCABundles},
		{Name: "clock", Cluster: true, Run: checkClock},
		{Name: "images", Cluster: true, Run: checkImages},
		{Name: "registry", Run: checkRegistry},
		{Name: "disk", Run: checkDisk},
		{Name: "hub", Run: checkHub},
	}
}

// Run runs the checks and collects their results, failures first within
// each check. It returns an error only when ctx ends; problems found are
// results.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Days <= 0 {
		o.Days = 30
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = 10 * time.Second
	}
	if o.DiskWarnPercent == 0 {
		o.DiskWarnPercent = DefaultDiskWarnPercent
	}
	if o.DiskFailPercent == 0 {
		o.DiskFailPercent = DefaultDiskFailPercent
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	checks := o.Checks
	if checks == nil {
		checks = Checks()
	}
	e := &Env{Options: o}
	rep := &Report{}
	needCluster := slices.ContainsFunc(checks, func(c Check) bool { return c.Cluster })
	if needCluster {
		r := connect(ctx, e)
		rep.Results = append(rep.Results, r)
	}
	for _, c := range checks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if c.Cluster && e.Kube == nil {
			continue
		}
		rs := c.Run(ctx, e)
		for i := range rs {
			if rs[i].Check == "" {
				rs[i].Check = c.Name
			}
		}
		slices.SortStableFunc(rs, func(a, b Result) int {
			return cmp.Or(-cmp.Compare(a.Severity.rank(), b.Severity.rank()), cmp.Compare(a.Subject, b.Subject))
		})
		rep.Results = append(rep.Results, rs...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, r := range rep.Results {
		switch r.Severity {
		case OK:
			rep.OK++
		case Warn:
			rep.Warn++
		case Fail:
			rep.Fail++
		}
	}
	return rep, nil
}

// connect sets e.Kube, or reports why the cluster cannot be checked.
func connect(ctx context.Context, e *Env) Result {
	kc := e.Options.Kube
	if kc == nil {
		var err error
		kc, err = kube.New(kube.Config{Kubeconfig: e.Kubeconfig, Context: e.Context})
		if err != nil {
			return Result{Check: "cluster", Severity: Fail, Message: err.Error(), Fix: "point --kubeconfig at the cluster's kubeconfig"}
		}
	}
	v, err := kc.ServerVersion(ctx)
	if err != nil {
		return Result{Check: "cluster", Severity: Fail, Message: err.Error(), Fix: "check that the API server is up and reachable from this host"}
	}
	e.Kube = kc
	return Result{Check: "cluster", Severity: OK, Message: "API server " + v.GitVersion + " reachable"}
}
