package cli

import (
	"fmt"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/agent"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/oci"
)

func init() { register(newAgent) }

// agentFlags are shared by agent serve and agent install.
type agentFlags struct {
	registry, namespace, name string
	mode                      string
	excludeNS                 []string
	excludeLabels             []string
	lifetime, renewBefore     time.Duration
	kubeconfig, context       string
}

func (f *agentFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.registry, "registry", "", "site registry and prefix images are rewritten to: [https://|http://]HOST[:PORT][/PREFIX] (required)")
	fl.StringVarP(&f.namespace, "namespace", "n", agent.DefaultNamespace, "the agent's namespace (never mutated)")
	fl.StringVar(&f.name, "name", agent.DefaultName, "name of the agent's objects and webhook configuration")
	fl.StringVar(&f.mode, "mode", "enforce", "for an image the registry lacks: enforce (refuse the object) or warn (admit it unchanged)")
	fl.StringArrayVar(&f.excludeNS, "exclude-namespace", nil, "namespace whose objects pass unchanged (repeatable; kube-system and the agent's own always are)")
	fl.StringArrayVar(&f.excludeLabels, "exclude-label", nil, "objects with this KEY=VALUE label pass unchanged (repeatable)")
	fl.DurationVar(&f.lifetime, "cert-lifetime", agent.DefaultCertLifetime, "lifetime of the agent's CA and serving certificate")
	fl.DurationVar(&f.renewBefore, "renew-before", agent.DefaultRenewBefore, "renew the certificate when less than this is left")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, ~/.kube/config, or the in-cluster service account)")
	fl.StringVar(&f.context, "context", "", "kubeconfig context")
	_ = cmd.MarkFlagRequired("registry")
}

func (f *agentFlags) check() (images.Destination, map[string]string, error) {
	if f.mode != "enforce" && f.mode != "warn" {
		return images.Destination{}, nil, fmt.Errorf("--mode %q: use enforce or warn", f.mode)
	}
	dest, err := images.ParseDestination(f.registry, false)
	if err != nil {
		return dest, nil, err
	}
	labels := map[string]string{}
	for _, kv := range f.excludeLabels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return dest, nil, fmt.Errorf("--exclude-label %q: use KEY=VALUE, e.g. skiff.dev/agent=skip", kv)
		}
		labels[k] = v
	}
	return dest, labels, nil
}

func newAgent(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "The admission agent: rewrite Pod images to the site registry at admission",
		Long: `The agent is a mutating admission webhook served by skiff itself. It
rewrites the images of Pods (and, with --pod-templates, of workload pod
templates) that are not in the site registry to the site registry, pinned
by digest after checking that the registry holds them, and refuses (or with
--mode warn only warns about) images it lacks. It reaches the images that
render-time relocation cannot: those operators start from flags, those in
ConfigMaps, and anything applied later. See docs/images-on-nodes.md.`,
	}
	cmd.AddCommand(newAgentServe(a), newAgentInstall(a), newAgentUninstall(a))
	return cmd
}

func newAgentServe(a *app) *cobra.Command {
	var (
		f           agentFlags
		rf          remoteFlags
		addr        string
		propagation time.Duration
		certIPs     []string
		certDNS     []string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the admission webhook (what the agent's Pod runs)",
		Long: `Serve answers admission reviews over TLS on --addr. The serving certificate
and its CA live in the Secret --name in --namespace; serve issues them when
missing, publishes the CA bundle to the MutatingWebhookConfiguration --name,
and renews both --renew-before the end of --cert-lifetime: the new CA joins
the bundle first, the new certificate is served --propagation later.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dest, labels, err := f.check()
			if err != nil {
				return err
			}
			remote, err := rf.options()
			if err != nil {
				return err
			}
			r, err := oci.NewRegistry(dest.Host, remote.WithAddress(dest.Address()))
			if err != nil {
				return err
			}
			co := agent.CertOptions{DNSNames: append(agent.ServiceNames(f.name, f.namespace), certDNS...),
				Lifetime: f.lifetime, RenewBefore: f.renewBefore, Propagation: propagation}
			for _, s := range certIPs {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("--cert-ip %q is not an IP address", s)
				}
				co.IPs = append(co.IPs, ip)
			}
			if err := co.Check(); err != nil {
				return err
			}
			kc, err := kube.New(kube.Config{Kubeconfig: f.kubeconfig, Context: f.context})
			if err != nil {
				return err
			}
			m := &agent.Mutator{
				Policy:   agent.Policy{Registry: dest, Namespace: f.namespace, ExcludeNamespaces: f.excludeNS, ExcludeLabels: labels, Warn: f.mode == "warn"},
				Resolver: agent.RegistryResolver{Registry: r},
			}
			rot := &agent.Rotator{
				Store:   &agent.KubeStore{Client: kc, Namespace: f.namespace, Secret: f.name, Webhook: f.name, Labels: agent.Labels(f.name)},
				Options: co,
			}
			a.status("skiff agent serving on %s, rewriting to %s", addr, f.registry)
			return agent.Serve(cmd.Context(), m, rot, agent.ServeOptions{Addr: addr, Logger: a.log})
		},
	}
	f.add(cmd)
	rf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", agent.DefaultAddr, "listen address")
	fl.DurationVar(&propagation, "propagation", agent.DefaultPropagation, "how long a renewed CA is in the webhook's caBundle before the new certificate is served")
	fl.StringArrayVar(&certIPs, "cert-ip", nil, "extra IP address in the serving certificate, for an agent outside the cluster (repeatable)")
	fl.StringArrayVar(&certDNS, "cert-dns", nil, "extra DNS name in the serving certificate (repeatable)")
	return cmd
}

func newAgentInstall(a *app) *cobra.Command {
	var (
		f             agentFlags
		rf            remoteFlags
		failurePolicy string
		podTemplates  bool
		nsLabels      []string
		plainHTTP     []string
		wait          time.Duration
		hostNetwork   string
		apiServer     string
		nodeSelector  []string
		tolerations   []string
	)
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Push the agent's image into the site registry and install it in the cluster",
		Long: `Install makes the agent's image from this skiff executable (one static
layer, no base image), pushes it to --registry under skiff/agent, and
applies the agent: its namespace when missing, RBAC limited to its own
Secret and webhook configuration, the certificate Secret, Service,
Deployment and the MutatingWebhookConfiguration with the CA bundle, the
latter once the Deployment is Available. The agent checks the registry
with the --ca-file and --insecure-registry given here (its image holds no
CA certificates of its own).
Everything carries the labels app.kubernetes.io/managed-by=skiff and
skiff.dev/agent=NAME, which uninstall checks before deleting.

--failure-policy Fail (the default) refuses Pods while the agent is
unreachable; in an air gap an image it did not rewrite could not be pulled
anyway. Ignore admits them unchanged. The agent's namespace and kube-system
are never sent to the webhook, so the agent can always start.

A cluster without kube-proxy or cluster DNS (a single node whose API
server runs beside kubelet) cannot reach the agent's Service: run the
agent in the node's network with --host-network 127.0.0.1:PORT (the
webhook then calls that address), give --api-server HOST:PORT, and pin it
to that node with --node-selector and --toleration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dest, labels, err := f.check()
			if err != nil {
				return err
			}
			remote, err := rf.options()
			if err != nil {
				return err
			}
			remote = remote.WithAddress(dest.Address())
			nsl := map[string]string{}
			for _, kv := range nsLabels {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--namespace-label %q: use KEY=VALUE", kv)
				}
				nsl[k] = v
			}
			cert := agent.CertOptions{Lifetime: f.lifetime, RenewBefore: f.renewBefore}
			if err := cert.Check(); err != nil {
				return err
			}
			target := path.Join(dest.Host, dest.Prefix, "skiff/agent") + ":" + imageTag(Version)
			a.status("pushing the agent image to %s", target)
			img, err := agent.PushImage(cmd.Context(), agent.ImageOptions{Target: target, Remote: remote})
			if err != nil {
				return err
			}
			var args []string
			if f.mode != "enforce" {
				args = append(args, "--mode", f.mode)
			}
			for _, h := range plainHTTP {
				args = append(args, "--plain-http", h)
			}
			for _, h := range rf.insecure {
				args = append(args, "--insecure-registry", h)
			}
			var ca []byte
			if rf.caFile != "" {
				if ca, err = os.ReadFile(rf.caFile); err != nil {
					return err
				}
			}
			sel := map[string]string{}
			for _, kv := range nodeSelector {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--node-selector %q: use KEY=VALUE, e.g. kubernetes.io/hostname=node1", kv)
				}
				sel[k] = v
			}
			var tols []agent.Toleration
			for _, s := range tolerations {
				t, err := agent.ParseToleration(s)
				if err != nil {
					return fmt.Errorf("--toleration: %w", err)
				}
				tols = append(tols, t)
			}
			kc, err := kube.New(kube.Config{Kubeconfig: f.kubeconfig, Context: f.context})
			if err != nil {
				return err
			}
			res, err := agent.Install(cmd.Context(), kc, agent.InstallOptions{
				WebhookOptions: agent.WebhookOptions{Name: f.name, Namespace: f.namespace, ExcludeNamespaces: f.excludeNS,
					ExcludeLabels: labels, NamespaceLabels: nsl, PodTemplates: podTemplates, FailurePolicy: failurePolicy},
				Image: img.Ref, Registry: f.registry, Args: args, RegistryCA: ca,
				Cert: cert, Wait: wait,
				HostNetwork: hostNetwork, APIServer: apiServer, NodeSelector: sel, Tolerations: tols,
			})
			if err != nil {
				return err
			}
			for _, r := range res.Objects {
				fmt.Fprintf(a.streams.Out, "applied %s\n", r)
			}
			fmt.Fprintf(a.streams.Out, "agent %s installed in %s (image %s)\n", f.name, f.namespace, img.Ref)
			return nil
		},
	}
	f.add(cmd)
	rf.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&failurePolicy, "failure-policy", agent.DefaultFailurePolicy, "what the API server does when the agent cannot be reached: Fail or Ignore")
	fl.BoolVar(&podTemplates, "pod-templates", false, "also rewrite the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs")
	fl.StringArrayVar(&nsLabels, "namespace-label", nil, "only namespaces with this KEY=VALUE label are sent to the agent (repeatable; default all)")
	fl.StringArrayVar(&plainHTTP, "agent-plain-http", nil, "registry host the agent in the cluster reaches over plain HTTP (repeatable)")
	fl.DurationVar(&wait, "wait", 2*time.Minute, "wait this long for the agent to become Available (0: do not wait)")
	fl.StringVar(&hostNetwork, "host-network", "", "run the agent in its node's network, listening on IP:PORT, and point the webhook there (a cluster without kube-proxy)")
	fl.StringVar(&apiServer, "api-server", "", "HOST:PORT where the agent reaches the API server instead of the kubernetes Service")
	fl.StringArrayVar(&nodeSelector, "node-selector", nil, "run the agent on nodes with this KEY=VALUE label (repeatable)")
	fl.StringArrayVar(&tolerations, "toleration", nil, "let the agent run on nodes with this taint: KEY[=VALUE][:EFFECT] (repeatable)")
	return cmd
}

func newAgentUninstall(a *app) *cobra.Command {
	var name, namespace, kubeconfig, kctx string
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove everything agent install created",
		Long: `Uninstall deletes the webhook configuration first, so admission never
points at a missing agent, then the agent's Deployment, Service, Secret,
RBAC and namespace. Only objects labelled app.kubernetes.io/managed-by=skiff
and skiff.dev/agent=NAME are deleted; others of the same name are reported
and left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig, Context: kctx})
			if err != nil {
				return err
			}
			res, err := agent.Uninstall(cmd.Context(), kc, name, namespace)
			if res != nil {
				for _, r := range res.Deleted {
					fmt.Fprintf(a.streams.Out, "deleted %s\n", r)
				}
				for _, r := range res.Skipped {
					fmt.Fprintf(a.streams.Out, "left %s: it does not carry the agent's ownership labels\n", r)
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", agent.DefaultName, "name of the agent's objects")
	fl.StringVarP(&namespace, "namespace", "n", agent.DefaultNamespace, "the agent's namespace")
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&kctx, "context", "", "kubeconfig context")
	return cmd
}

// imageTag makes a valid image tag of a version string.
func imageTag(v string) string {
	b := []byte(v)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 || b[0] == '.' || b[0] == '-' {
		b = append([]byte("v"), b...)
	}
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}
