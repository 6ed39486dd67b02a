package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/mirror"
	"github.com/skiffhq/skiff/internal/sign"
)

// Shell completions beyond cobra's defaults (`skiff completion bash|zsh|
// fish|powershell` prints the script): flag values, deployment names and
// namespaces from the cluster, kubeconfig contexts, trusted key names, hub addresses and package references from
// the hubs you are logged in to. Lookups over the network are best
// effort: a short timeout, and nothing is printed when they fail.

// completionTimeout bounds a completion's cluster or hub lookup.
const completionTimeout = 3 * time.Second

// Choices of enumerated flags, by flag name.
var (
	outputFormats = []string{formatTable, formatJSON, formatYAML}
	flagChoices   = map[string][]string{
		"log-format": {"text", "json"},
		"progress":   {"auto", "bars", "plain", "none"},
		"fail-on":    {"critical", "high", "medium", "low", "none"},
	}
	// commonPlatforms are offered for --platform (any os/arch[/variant]
	// is accepted).
	commonPlatforms = []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/386", "linux/ppc64le", "linux/s390x", "linux/riscv64", "windows/amd64"}
)

// addCompletions registers completion functions on every command below
// root that has no own: by flag name, and by the first argument its Use
// line names.
func addCompletions(root *cobra.Command) {
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if fn := flagCompletion(root, f); fn != nil {
			_ = root.RegisterFlagCompletionFunc(f.Name, fn)
		}
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		// c.Flags() holds only c's own flags until cobra merges the
		// persistent ones in (LocalFlags would merge them now, changing
		// the help of command groups).
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if _, ok := c.GetFlagCompletionFunc(f.Name); ok {
				return
			}
			if fn := flagCompletion(c, f); fn != nil {
				_ = c.RegisterFlagCompletionFunc(f.Name, fn)
			}
		})
		if c.ValidArgsFunction == nil && c.ValidArgs == nil {
			c.ValidArgsFunction = argCompletion(c)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	for _, c := range root.Commands() {
		walk(c)
	}
}

type completeFunc = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective)

// fixed completes from a list of values.
func fixed(values ...string) completeFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return withPrefix(values, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func withPrefix(values []string, prefix string) []string {
	var out []string
	for _, v := range values {
		if strings.HasPrefix(v, prefix) {
			out = append(out, v)
		}
	}
	return out
}

// flagCompletion returns the completion of flag f of c, nil for cobra's
// default (file names).
func flagCompletion(c *cobra.Command, f *pflag.Flag) completeFunc {
	switch {
	case f.Name == "output":
		if f.Value.Type() == "format" {
			return fixed(outputFormats...)
		}
		// A verb's own -o lists its formats in its help.
		var listed []string
		for _, v := range outputFormats {
			if strings.Contains(f.Usage, v) {
				listed = append(listed, v)
			}
		}
		if len(listed) > 0 {
			return fixed(listed...)
		}
	case f.Name == "format" && c.Name() == "sbom":
		return fixed(sbomCycloneDX, sbomSPDX)
	case f.Name == "format" && c.Name() == "mirror-config":
		var fs []string
		for _, m := range mirror.Formats {
			fs = append(fs, string(m))
		}
		return fixed(fs...)
	case f.Name == "platform":
		return completePlatforms
	case f.Name == "namespace":
		return completeNamespaces
	case f.Name == "context" && c.Flags().Lookup("kubeconfig") != nil:
		return completeContexts
	case flagChoices[f.Name] != nil:
		return fixed(flagChoices[f.Name]...)
	}
	return nil
}

// completePlatforms completes the last of a comma-separated list.
func completePlatforms(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	i := strings.LastIndex(toComplete, ",") + 1
	done, last := toComplete[:i], toComplete[i:]
	var out []string
	for _, p := range withPrefix(commonPlatforms, last) {
		if !slices.Contains(strings.Split(done, ","), p) {
			out = append(out, done+p)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// argCompletion completes the first argument of c by what its Use line
// names: a deployment, a hub package reference, a hub address.
func argCompletion(c *cobra.Command) completeFunc {
	words := strings.Fields(c.Use)
	if len(words) < 2 {
		return nil
	}
	first := strings.Trim(words[1], "[]")
	switch {
	case first == "DEPLOYMENT":
		return completeDeployments
	case first == "HUB/OWNER/NAME:VERSION":
		// Commands reviewing packages name pending ones too.
		status := ""
		if c.Parent() != nil && c.Parent().Name() == "hub" {
			status = "all"
		}
		return completeHubRefs(status, false)
	case c.Name() == "push" && c.Parent() != nil && !c.Parent().HasParent():
		// An archive file, then HUB/OWNER.
		return completePush
	case first == "ARCHIVE" && strings.Contains(c.Long+c.Use, "HUB/OWNER/NAME:VERSION"), first == "ARCHIVE" && (c.Name() == "install" || c.Name() == "upgrade"):
		// An archive file, or a package on a hub.
		return completeHubRefs("", true)
	case first == "HUB":
		return completeHubs
	case first == "NAME|KEY-ID" && c.Parent() != nil && c.Parent().Name() == "trust":
		return completeTrusted
	}
	return nil
}

// completeTrusted lists the names of the trusted keys.
func completeTrusted(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var dir string
	if f := cmd.Flag("trust-dir"); f != nil {
		dir = f.Value.String()
	}
	if dir == "" {
		d, err := sign.DefaultTrustDir()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		dir = d
	}
	t, err := sign.LoadTrust(dir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, k := range t.Keys() {
		names = append(names, k.Name)
	}
	return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// clusterOf reads the cluster flags of cmd.
func clusterOf(cmd *cobra.Command) (install.Cluster, string) {
	get := func(name string) string {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	return install.Cluster{Kubeconfig: get("kubeconfig"), Context: get("context")}, get("namespace")
}

func completionContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, completionTimeout)
}

// completeDeployments lists the deployments recorded in the namespace
// (--namespace, default "default").
func completeDeployments(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	cl, ns := clusterOf(cmd)
	ctx, cancel := completionContext(cmd)
	defer cancel()
	store, err := install.Records(cl)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	recs, err := store.Deployments(ctx, ns)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Deployment)
	}
	return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// completeNamespaces lists the cluster's namespaces.
func completeNamespaces(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cl, _ := clusterOf(cmd)
	ctx, cancel := completionContext(cmd)
	defer cancel()
	kc, err := kube.New(kube.Config{Kubeconfig: cl.Kubeconfig, Context: cl.Context})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names, err := kc.Namespaces(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// completeContexts lists the kubeconfig's contexts.
func completeContexts(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cl, _ := clusterOf(cmd)
	names, err := kube.Contexts(cl.Kubeconfig)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// loggedInHubs lists the hubs with a stored login, sorted.
func loggedInHubs() []string {
	_, cfg, err := loadHubConfig()
	if err != nil {
		return nil
	}
	return cfg.Hosts()
}

// completeHubs completes the first argument with a hub address.
func completeHubs(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return withPrefix(loggedInHubs(), toComplete), cobra.ShellCompDirectiveNoFileComp
}

// completePush completes push's arguments: the archive as a file, then
// HUB/OWNER: the address of a hub you are logged in to, then the owners
// on it you can write to (best effort: nothing when the hub does not
// answer in time).
func completePush(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return nil, cobra.ShellCompDirectiveDefault
	case 1:
	default:
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	hosts := loggedInHubs()
	host, _, typedHost := strings.Cut(toComplete, "/")
	if !typedHost {
		var out []string
		for _, h := range withPrefix(hosts, toComplete) {
			out = append(out, h+"/")
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	if !slices.Contains(hosts, host) {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := completionHubFlags(cmd).client(host)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := completionContext(cmd)
	defer cancel()
	me, err := c.Whoami(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var targets []string
	for _, o := range me.Writable {
		targets = append(targets, host+"/"+o)
	}
	return withPrefix(targets, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// completionHubFlags reads the hub TLS flags given to cmd so far.
func completionHubFlags(cmd *cobra.Command) *hubFlags {
	f := &hubFlags{}
	if v := cmd.Flags().Lookup("hub-ca-file"); v != nil {
		f.caFile = v.Value.String()
	}
	if v := cmd.Flags().Lookup("hub-insecure"); v != nil {
		f.insecure = v.Value.String() == "true"
	}
	return f
}

// completeHubRefs completes HUB/OWNER/NAME:VERSION: first the address of
// a hub you are logged in to, then the packages it lists (approved ones,
// or with status "all" every one you can see). With files, an argument
// that names no such hub completes as a file name.
func completeHubRefs(status string, files bool) completeFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		none := cobra.ShellCompDirectiveNoFileComp
		if files {
			none = cobra.ShellCompDirectiveDefault
		}
		if len(args) > 0 {
			return nil, none
		}
		hosts := loggedInHubs()
		host, _, typedHost := strings.Cut(toComplete, "/")
		if !typedHost {
			var out []string
			for _, h := range withPrefix(hosts, toComplete) {
				out = append(out, h+"/")
			}
			if len(out) == 0 {
				return nil, none
			}
			return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
		}
		if !slices.Contains(hosts, host) {
			return nil, none
		}
		c, err := completionHubFlags(cmd).client(host)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := completionContext(cmd)
		defer cancel()
		pkgs, err := c.Search(ctx, hubclient.SearchOptions{Status: status})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var refs []string
		for _, p := range pkgs {
			refs = append(refs, host+"/"+p.Owner+"/"+p.Name+":"+p.Version)
		}
		return withPrefix(refs, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}
