package cli

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/secret"
)

// clusterFlags select the cluster.
type clusterFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

func (f *clusterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&f.context, "context", "", "kubeconfig context")
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "default", "namespace of the deployment")
}

func (f *clusterFlags) cluster() install.Cluster {
	return install.Cluster{Kubeconfig: f.kubeconfig, Context: f.context}
}

// deployFlags are shared by install, upgrade and diff.
type deployFlags struct {
	clusterFlags
	rf          remoteFlags
	hf          hubFlags
	tf          trustFlags
	gf          gateFlags
	name        string
	registry    string
	flatten     bool
	skipLoad    bool
	values      []string
	identities  []string
	sets        []string
	timeout     time.Duration
	noWait      bool
	atomic      bool
	dryRun      bool
	kubeVersion string
	takeOwner   bool
	allowCmds   bool
	// upgrade only
	allowDowngrade bool
	reuseValues    bool
	resetValues    bool
	installMissing bool
}

func (f *deployFlags) add(cmd *cobra.Command) {
	f.clusterFlags.add(cmd)
	f.rf.add(cmd)
	f.hf.add(cmd)
	f.tf.add(cmd)
	f.gf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "deployment name (default: the package name)")
	fl.StringVar(&f.registry, "registry", "", "registry [https://|http://]HOST[:PORT][/PREFIX] the images are loaded into and pulled from (required)")
	fl.BoolVar(&f.flatten, "flatten", false, "keep only the last path element of each repository (refused when two images would collide)")
	fl.BoolVar(&f.skipLoad, "skip-load", false, "assume the images were already loaded (skiff load)")
	fl.StringArrayVarP(&f.values, "values", "f", nil, "values file, top-level keys are chart names; .age files are decrypted in memory (repeatable)")
	fl.StringArrayVar(&f.identities, "identity", nil, "age identity file to decrypt .age values files (or $SKIFF_PASSPHRASE)")
	fl.StringArrayVar(&f.sets, "set", nil, "set a chart value: CHART.key=value (repeatable)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "readiness timeout per component")
	fl.BoolVar(&f.noWait, "no-wait", false, "do not wait for readiness")
	fl.BoolVar(&f.atomic, "atomic", false, "undo a failed operation (uninstall or roll back)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the relocated manifests; change nothing")
	fl.StringVar(&f.kubeVersion, "kube-version", "", "Kubernetes version --dry-run and diff render the charts for (default: the one the package was built for)")
	fl.BoolVar(&f.takeOwner, "take-ownership", false, "adopt objects and Helm releases that exist but belong to another deployment or were not made by Skiff")
}

// addCommands adds --allow-commands (install and upgrade).
func (f *deployFlags) addCommands(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.allowCmds, "allow-commands", false, "let the package's lifecycle steps run commands on this machine (skiff inspect lists them)")
}

// addUpgrade adds the flags only upgrade has.
func (f *deployFlags) addUpgrade(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.allowDowngrade, "allow-downgrade", false, "allow a package version older than the deployed one")
	fl.BoolVarP(&f.installMissing, "install", "i", false, "install the deployment if it does not exist")
	fl.BoolVar(&f.reuseValues, "reuse-values", false, "keep the values the deployed revision was given, with this command's values over them")
	fl.BoolVar(&f.resetValues, "reset-values", false, "use only the package's defaults and this command's values, dropping the deployed revision's")
}

// open verifies and opens the archive and builds the options.
func (f *deployFlags) open(a *app, cmd *cobra.Command, path string) (*install.Package, install.Options, error) {
	var o install.Options
	opts, err := f.tf.options(a)
	if err != nil {
		return nil, o, err
	}
	remote, err := f.rf.options()
	if err != nil {
		return nil, o, err
	}
	vals, err := f.readValues(a)
	if err != nil {
		return nil, o, err
	}
	// A registry or hub address is pulled first (ociref.go).
	path, cleanup, err := ociArchive(cmd.Context(), a, path, remote, &f.hf)
	if err != nil {
		return nil, o, err
	}
	defer cleanup() // the opened archive stays readable
	p, err := install.Open(cmd.Context(), path, opts)
	if err != nil {
		return nil, o, err
	}
	o = install.Options{
		Deployment: f.name, Namespace: f.namespace, Cluster: f.cluster(),
		Load:     install.LoadOptions{Registry: f.registry, Flatten: f.flatten, Remote: remote},
		SkipLoad: f.skipLoad, Values: vals, Set: f.sets, Timeout: f.timeout, NoWait: f.noWait,
		Atomic: f.atomic, DryRun: f.dryRun, TakeOwnership: f.takeOwner, DryRunOut: a.streams.Out, Logger: a.log,
		AllowDowngrade: f.allowDowngrade, ReuseValues: f.reuseValues, ResetValues: f.resetValues,
		InstallMissing: f.installMissing, KubeVersion: f.kubeVersion, AllowCommands: f.allowCmds,
	}
	if o.Gate, err = f.gf.gate(a); err != nil {
		p.Close()
		return nil, o, err
	}
	return p, o, nil
}

func (f *deployFlags) readValues(a *app) ([]install.ValuesFile, error) {
	var out []install.ValuesFile
	for _, path := range f.values {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		vf := install.ValuesFile{Name: path, Data: data}
		if secret.IsEncrypted(data) {
			plain, err := secret.Decrypt(bytes.NewReader(data), secret.DecryptOptions{
				IdentityFiles: f.identities,
				Passphrase:    func() ([]byte, error) { return passphrase(a, "passphrase for "+path, false) },
			})
			if err != nil {
				return nil, fmt.Errorf("decrypting %s: %w", path, err)
			}
			vf.Data, vf.Secret, vf.Sealed = plain, true, data
		}
		out = append(out, vf)
	}
	return out, nil
}

// progress renders install events.
func (a *app) deployProgress() (func(install.Event), func()) {
	bp := a.newBlobProgress("load")
	return func(e install.Event) {
			if e.Push != nil {
				bp.event(*e.Push)
				return
			}
			if e.Step == "output" {
				bp.output(e.Message) // a command's output, shown with any --progress
				return
			}
			bp.message(e.Message)
		}, func() {
			bp.done()
		}
}
