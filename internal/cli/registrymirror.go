package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/mirror"
)

// newRegistryMirrorConfig is `skiff registry mirror-config`, added to the
// registry command.
func newRegistryMirrorConfig(a *app) *cobra.Command {
	var (
		o      mirror.Options
		format string
		out    string
		caFile string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "mirror-config --registry HOST[/PREFIX] --format FORMAT --output-dir DIR",
		Short: "Write node configuration that pulls upstream image names from the site registry",
		Long: `Mirror-config writes what nodes need so that images named by their
upstream names (docker.io/library/nginx, quay.io/org/app) are pulled from
the site registry, where skiff load put them under
HOST/PREFIX/<upstream host>/<path>. Pods that skiff installed already name
the relocated images; this covers the images nobody relocated: those that
operators start from flags, or that others apply later.

Formats:
  containerd  a config_path directory: one HOST/hosts.toml per upstream and
              one for the site registry (scheme, CA, credentials). Write it
              to /etc/containerd/certs.d and set the CRI plugin's
              registry.config_path there (or: ctr image pull --hosts-dir DIR)
  k3s         registries.yaml for k3s (/etc/rancher/k3s/) and RKE2
              (/etc/rancher/rke2/), with rewrites; --ca-path says where the
              CA file goes on nodes
  crio        a containers-registries.conf v2 drop-in, certs.d/HOST/ca.crt
              and, with credentials, auth.json (CRI-O's --global-auth-file)
  talos       a machine-config patch (talosctl patch mc --patch @FILE)

The password comes from $SKIFF_REGISTRY_PASSWORD (or is asked on the
terminal); files holding credentials get mode 0600 and nothing secret is
printed. Files that skiff did not generate are never overwritten without
--force.`,
		Example: `  skiff registry mirror-config --registry registry.site:5000/airgap --ca-file ca.crt \
    --format containerd --output-dir /etc/containerd/certs.d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if caFile != "" {
				b, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("reading the CA: %w", err)
				}
				o.CA = b
			}
			if o.Username != "" {
				p := os.Getenv("SKIFF_REGISTRY_PASSWORD")
				if p == "" {
					b, err := readPassword(a, "password for "+o.Username, false)
					if err != nil {
						return fmt.Errorf("no password: set SKIFF_REGISTRY_PASSWORD or run on a terminal")
					}
					p = string(b)
				}
				o.Password = p
			}
			files, err := mirror.Files(mirror.Format(format), o)
			if err != nil {
				return err
			}
			if err := mirror.Write(out, files, force); err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintf(a.streams.Out, "wrote %s (%04o)\n", f.Path, f.Mode)
			}
			a.status("%d files for %s in %s", len(files), format, out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Registry, "registry", "", "site registry [https://|http://]HOST[:PORT][/PREFIX], as given to skiff load (required; http:// means --plain-http)")
	fl.StringVar(&format, "format", string(mirror.Containerd), "containerd, k3s, crio or talos")
	fl.StringVar(&out, "output-dir", "", "directory to write to (required)")
	migrateOutput(cmd, "--output-dir")
	fl.StringSliceVar(&o.Upstreams, "upstream", nil, "upstream registry host to mirror (repeatable; default docker.io, quay.io, registry.k8s.io, ghcr.io, gcr.io)")
	fl.BoolVar(&o.PlainHTTP, "plain-http", false, "the site registry speaks plain HTTP")
	fl.BoolVar(&o.SkipVerify, "insecure", false, "nodes skip TLS verification of the site registry")
	fl.StringVar(&caFile, "ca-file", "", "PEM CA that signed the site registry's certificate")
	fl.StringVar(&o.CAPath, "ca-path", "", "where the CA file will be on nodes (k3s; default "+mirror.DefaultK3sCAPath+")")
	fl.StringVarP(&o.Username, "username", "u", "", "user name for the site registry (password from $SKIFF_REGISTRY_PASSWORD)")
	fl.BoolVar(&force, "force", false, "overwrite files skiff did not generate")
	_ = cmd.MarkFlagRequired("registry")
	_ = cmd.MarkFlagRequired("output-dir")
	return cmd
}
