package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/doctor"
	"github.com/skiffhq/skiff/internal/hubclient"
)

func init() { register(newDoctor) }

func newDoctor(a *app) *cobra.Command {
	var (
		o           doctor.Options
		rf          remoteFlags
		hf          hubFlags
		output      string
		skipCluster bool
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a site for expiring certificates, clock skew, missing images and an unhealthy registry or hub",
		Long: `Doctor checks what quietly breaks an air-gapped site: TLS certificates in
Secrets and the CA bundles of webhooks and APIServices that expire within
--days, clocks of nodes and the API server drifting from this host's,
workloads whose images are not in --registry, a registry that does not
answer or whose --registry-root is running out of disk, and a --hub that
is not healthy. It exits non-zero when any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			remote, err := rf.options()
			if err != nil {
				return err
			}
			o.Remote = remote
			if o.Hub != "" {
				c, err := hubclient.New(o.Hub, hubclient.Options{CAFile: hf.caFile, Insecure: hf.insecure})
				if err != nil {
					return err
				}
				o.Hub = c.URL()
				o.HTTPClient = &http.Client{Transport: c.Transport(), Timeout: 10 * time.Second}
			}
			if skipCluster {
				for _, c := range doctor.Checks() {
					if !c.Cluster {
						o.Checks = append(o.Checks, c)
					}
				}
			}
			rep, err := doctor.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			switch output {
			case "json":
				enc := json.NewEncoder(a.streams.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			case "table", "":
				w := a.table()
				fmt.Fprintln(w, "STATUS\tCHECK\tSUBJECT\tMESSAGE")
				for _, r := range rep.Results {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Severity, r.Check, r.Subject, r.Message)
					if r.Fix != "" && r.Severity != doctor.OK {
						fmt.Fprintf(w, "\t\t\tfix: %s\n", r.Fix)
					}
				}
				if err := w.Flush(); err != nil {
					return err
				}
				fmt.Fprintf(a.streams.Out, "%d ok, %d warnings, %d failures\n", rep.OK, rep.Warn, rep.Fail)
			default:
				return fmt.Errorf("-o %q: use table or json", output)
			}
			if rep.Failed() {
				return &ExitError{Code: 1, Err: fmt.Errorf("%d checks failed: see the fix hints above", rep.Fail)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&o.Context, "context", "", "kubeconfig context")
	fl.StringVarP(&o.Namespace, "namespace", "n", "", "check Secrets and workloads of this namespace only (default: all)")
	fl.BoolVar(&skipCluster, "skip-cluster", false, "run only the registry, disk and hub checks")
	fl.StringVar(&o.Registry, "registry", "", "the site's registry [https://|http://]HOST[:PORT][/PREFIX]: check it answers and holds every workload image")
	fl.StringVar(&o.RegistryRoot, "registry-root", "", "storage directory of a local registry whose free disk space to check")
	fl.Float64Var(&o.DiskWarnPercent, "disk-warn-percent", doctor.DefaultDiskWarnPercent, "warn when the registry root has less free space than this, in percent (negative: never)")
	fl.Float64Var(&o.DiskFailPercent, "disk-fail-percent", doctor.DefaultDiskFailPercent, "fail when the registry root has less free space than this, in percent (negative: never)")
	fl.StringVar(&o.Hub, "hub", "", "a Skiff hub, [https://|http://]HOST[:PORT], whose /healthz to check")
	fl.IntVar(&o.Days, "days", 30, "warn about certificates expiring within this many days")
	fl.DurationVar(&o.MaxSkew, "max-skew", 10*time.Second, "warn about clocks this far apart")
	fl.StringVarP(&output, "output", "o", "table", "table or json")
	rf.add(cmd)
	hf.add(cmd)
	return cmd
}
