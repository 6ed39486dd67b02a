package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
	"github.com/skiffhq/skiff/internal/sign"
)

// complete runs cobra's hidden __complete command (what the shell
// scripts of `skiff completion` call) and returns the candidates and the
// directive.
func complete(t *testing.T, args ...string) ([]string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Run(context.Background(), Streams{In: strings.NewReader(""), Out: &out, Err: &errb}, append([]string{"__complete"}, args...)); code != 0 {
		t.Fatalf("__complete %q: exit %d: %s", args, code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	d, err := strconv.Atoi(strings.TrimPrefix(last, ":"))
	if !strings.HasPrefix(last, ":") || err != nil {
		t.Fatalf("__complete %q: no directive in %q", args, out.String())
	}
	var vals []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t") // a description may follow
		vals = append(vals, v)
	}
	return vals, d
}

const (
	dirNoSpace  = 2
	dirNoFile   = 4
	dirDefault  = 0
	noFileSpace = dirNoSpace | dirNoFile
)

func TestCompleteFlagValues(t *testing.T) {
	t.Setenv("SKIFF_HUBS_FILE", filepath.Join(t.TempDir(), "hubs.json"))
	t.Setenv("SKIFF_TRUST_DIR", t.TempDir())
	for _, name := range []string{"release", "renovate", "other"} {
		key, err := sign.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := sign.MarshalPublicKey(key.Public())
		if err := sign.AddTrusted(os.Getenv("SKIFF_TRUST_DIR"), pub, name); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\ncontexts: [{name: prod, context: {cluster: c}}, {name: lab, context: {cluster: c}}, {name: lab-2, context: {cluster: c}}]\ncurrent-context: lab\n"), 0o600)
	for _, c := range []struct {
		args []string
		want []string
		dir  int
	}{
		{[]string{"verify", "x.skiff", "-o", ""}, []string{"table", "json", "yaml"}, dirNoFile},
		{[]string{"verify", "x.skiff", "--output", "j"}, []string{"json"}, dirNoFile},
		{[]string{"--log-format", ""}, []string{"text", "json"}, dirNoFile},
		{[]string{"load", "--progress", "p"}, []string{"plain"}, dirNoFile},
		{[]string{"sbom", "x.skiff", "--format", ""}, []string{sbomCycloneDX, sbomSPDX}, dirNoFile},
		{[]string{"registry", "mirror-config", "--format", ""}, []string{"containerd", "k3s", "crio", "talos"}, dirNoFile},
		{[]string{"scan", "x.skiff", "--fail-on", "c"}, []string{"critical"}, dirNoFile},
		{[]string{"build", "--platform", "linux/arm"}, []string{"linux/arm64", "linux/arm/v7", "linux/arm/v6"}, noFileSpace},
		{[]string{"build", "--platform", "linux/amd64,linux/s"}, []string{"linux/amd64,linux/s390x"}, noFileSpace},
		// Contexts come from the kubeconfig file alone.
		{[]string{"status", "--kubeconfig", kubeconfig, "--context", ""}, []string{"lab", "lab-2", "prod"}, dirNoFile},
		{[]string{"install", "--kubeconfig", kubeconfig, "--context", "la"}, []string{"lab", "lab-2"}, dirNoFile},
		{[]string{"trust", "remove", "re"}, []string{"release", "renovate"}, dirNoFile},
		{[]string{"trust", "remove", "--trust-dir", t.TempDir(), ""}, nil, dirNoFile},
		// No hub logged in: nothing to offer, files are not offered either.
		{[]string{"hub", "export", ""}, nil, dirNoFile},
		{[]string{"hub", "approve", ""}, nil, dirNoFile},
		// install takes an archive: files, unless a logged-in hub matches.
		{[]string{"install", ""}, nil, dirDefault},
	} {
		got, dir := complete(t, c.args...)
		if !slices.Equal(got, c.want) || dir != c.dir {
			t.Errorf("%q: %q directive %d, want %q directive %d", c.args, got, dir, c.want, c.dir)
		}
	}
}

// TestCompleteFromTheCluster completes deployment names (from the
// release records) and namespaces against the test control plane; an
// unreachable cluster completes nothing, quickly and silently.
func TestCompleteFromTheCluster(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("complete-%d", time.Now().UnixNano()%1e9)
	if err := kc.EnsureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kc.Delete(context.Background(), []kube.ObjectRef{{Version: "v1", Kind: "Namespace", Name: ns}}, kube.DeleteOptions{})
	})
	contexts, err := kube.Contexts(kubeconfig)
	if err != nil || len(contexts) == 0 {
		t.Fatalf("contexts of %s: %v %q", kubeconfig, err, contexts)
	}
	store := release.NewStore(release.NewSecrets(kc), release.StoreOptions{})
	for _, name := range []string{"shop", "shipping", "web"} {
		if err := store.Create(ctx, &release.Record{Deployment: name, Namespace: ns, Status: release.StatusDeployed, Package: release.Package{Name: name, Version: "1.0.0"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"status", "--kubeconfig", kubeconfig, "-n", ns, ""}, []string{"shipping", "shop", "web"}},
		{[]string{"uninstall", "--kubeconfig", kubeconfig, "--namespace", ns, "sh"}, []string{"shipping", "shop"}},
		{[]string{"history", "--kubeconfig", kubeconfig, "-n", ns, "shop", ""}, nil}, // one deployment only
		{[]string{"get", "values", "--kubeconfig", kubeconfig, "-n", ns, "w"}, []string{"web"}},
		{[]string{"status", "--kubeconfig", kubeconfig, ""}, nil}, // none in default
		{[]string{"status", "--kubeconfig", kubeconfig, "-n", "complete-"}, []string{ns}},
		{[]string{"install", "--kubeconfig", kubeconfig, "--namespace", "kube-p"}, []string{"kube-public"}},
		{[]string{"status", "--kubeconfig", kubeconfig, "--context", ""}, contexts},
	} {
		got, dir := complete(t, c.args...)
		if !slices.Equal(got, c.want) || dir != dirNoFile {
			t.Errorf("%q: %q directive %d, want %q", c.args, got, dir, c.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(bad, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n"), 0o600)
	start := time.Now()
	if got, _ := complete(t, "status", "--kubeconfig", bad, ""); len(got) != 0 || time.Since(start) > 2*completionTimeout {
		t.Errorf("an unreachable cluster: %q after %s", got, time.Since(start))
	}
}

// TestCompleteHubRefs completes hub addresses and package references
// from a hub started here, logged in through hubs.json.
func TestCompleteHubRefs(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	ctx := context.Background()
	key, trust := hubtest.TrustedKey(t)
	h, err := hub.New(ctx, hub.Options{Root: t.TempDir(), TrustDir: trust})
	if err != nil {
		t.Fatal(err)
	}
	host := hubtest.Serve(t, h)
	const password = "correct-horse-battery"
	st := h.Store()
	for _, u := range []string{"alice", "bob"} {
		if err := st.AddUser(ctx, u, password, false); err != nil {
			t.Fatal(err)
		}
	}
	st.Grant(ctx, "acme", "alice", hub.LevelWrite)
	st.Grant(ctx, "acme", "bob", hub.LevelAdmin)
	// push completes the owners bob can write to, not those he only reads
	// nor those he has no grant on.
	st.Grant(ctx, "beta", "bob", hub.LevelWrite)
	st.Grant(ctx, "delta", "bob", hub.LevelRead)
	st.Grant(ctx, "gamma", "alice", hub.LevelWrite)
	login := func(user string) (*hubclient.Client, string) {
		anon, err := hubclient.New(host, hubclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := anon.Login(ctx, user, password, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		c, err := hubclient.New(host, hubclient.Options{Username: user, Token: tok.Secret})
		if err != nil {
			t.Fatal(err)
		}
		return c, tok.Secret
	}
	alice, _ := login("alice")
	bob, bobToken := login("bob")
	dir := t.TempDir()
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := alice.Push(ctx, hubtest.Archive(t, dir, "shop", v, 1, key), "acme", hubclient.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.Approve(ctx, "acme", "shop", "1.0.0", ""); err != nil {
		t.Fatal(err)
	}
	hubs := filepath.Join(t.TempDir(), "hubs.json")
	t.Setenv("SKIFF_HUBS_FILE", hubs)
	cfg := &hubclient.Config{Hubs: map[string]hubclient.Login{
		host:            {Username: "bob", Token: bobToken, Expires: time.Now().Add(time.Hour)},
		"127.0.0.1:1":   {Username: "bob", Token: "x"}, // not running
		"hub.invalid:1": {Username: "bob", Token: "x"},
	}}
	if err := cfg.Save(hubs); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string
		dir  int
	}{
		{[]string{"pull", ""}, []string{"127.0.0.1:1/", host + "/", "hub.invalid:1/"}, noFileSpace},
		{[]string{"pull", host[:len(host)-1]}, []string{host + "/"}, noFileSpace},
		// Pull offers approved packages; the review commands every one.
		{[]string{"pull", host + "/"}, []string{host + "/acme/shop:1.0.0"}, dirNoFile},
		{[]string{"hub", "approve", host + "/acme/"}, []string{host + "/acme/shop:1.0.0", host + "/acme/shop:1.1.0"}, dirNoFile},
		{[]string{"inspect", host + "/acme/shop:1.1"}, nil, dirNoFile},
		{[]string{"install", host + "/acme/s"}, []string{host + "/acme/shop:1.0.0"}, dirNoFile},
		// install's archive: a file when no hub matches.
		{[]string{"install", "./shop"}, nil, dirDefault},
		// A hub that does not answer: nothing, silently.
		{[]string{"pull", "127.0.0.1:1/"}, nil, dirNoFile},
		{[]string{"hub", "export", ""}, []string{"127.0.0.1:1", host, "hub.invalid:1"}, dirNoFile},
		{[]string{"search", "127"}, []string{"127.0.0.1:1", host}, dirNoFile},
		// push: the archive as a file, then HUB/ and the owners bob may write to.
		{[]string{"push", ""}, nil, dirDefault},
		{[]string{"push", "shop.skiff", ""}, []string{"127.0.0.1:1/", host + "/", "hub.invalid:1/"}, noFileSpace},
		{[]string{"push", "shop.skiff", host + "/"}, []string{host + "/acme", host + "/beta"}, dirNoFile},
		{[]string{"push", "shop.skiff", host + "/b"}, []string{host + "/beta"}, dirNoFile},
		{[]string{"push", "shop.skiff", "127.0.0.1:1/"}, nil, dirNoFile},
		{[]string{"push", "shop.skiff", host + "/acme", ""}, nil, dirNoFile},
	} {
		want := c.want
		slices.Sort(want)
		got, dir := complete(t, c.args...)
		slices.Sort(got)
		if !slices.Equal(got, want) || dir != c.dir {
			t.Errorf("%q: %q directive %d, want %q directive %d", c.args, got, dir, want, c.dir)
		}
	}
}
