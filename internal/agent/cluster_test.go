package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/internal/agent"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/oci"
)

const reloader = "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1"

func randomName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

func namespace(t *testing.T, kc *kube.Client, name string, labels map[string]string) {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	ns.SetLabels(labels)
	if _, err := kc.Apply(context.Background(), []*unstructured.Unstructured{ns}, kube.ApplyOptions{FieldManager: "skiff-test"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kc.Delete(context.Background(), []kube.ObjectRef{{Version: "v1", Kind: "Namespace", Name: name}}, kube.DeleteOptions{})
	})
}

func createPod(ctx context.Context, kc *kube.Client, ns, name, image string) (*unstructured.Unstructured, error) {
	p := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": image}}},
	}}
	if _, err := kc.Apply(ctx, []*unstructured.Unstructured{p}, kube.ApplyOptions{FieldManager: "skiff-test"}); err != nil {
		return nil, err
	}
	return kc.Get(ctx, kube.ObjectRef{Version: "v1", Kind: "Pod", Namespace: ns, Name: name})
}

func podImage(p *unstructured.Unstructured) string {
	cs, _, _ := unstructured.NestedSlice(p.Object, "spec", "containers")
	img, _ := cs[0].(map[string]any)["image"].(string)
	return img
}

// TestWebhookOnControlPlane runs the agent on 127.0.0.1 behind a URL-based
// MutatingWebhookConfiguration, so that the real kube-apiserver calls it:
// a Pod naming an upstream image is rewritten to the site registry by
// digest, one naming an image the registry lacks is refused, and a short
// certificate lifetime is renewed twice without a failed admission.
func TestWebhookOnControlPlane(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	reg := fixture.Registry(t)
	pushed := fixture.PushImage(t, reg+"/site/"+reloader, fixture.ImageOptions{Layers: []int{1024}, Seed: 7})
	want := reg + "/site/quay.io/prometheus-operator/prometheus-config-reloader@" + pushed.Digest.String()

	id := randomName(t, "")
	sysNS, appNS := "agent-sys-"+id, "agent-app-"+id
	namespace(t, kc, sysNS, nil)
	namespace(t, kc, appNS, map[string]string{"skiff.dev/agent-test": id})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	name := "skiff-agent-test-" + id
	wh, err := agent.Webhook(agent.WebhookOptions{
		Name: name, Namespace: sysNS, NamespaceLabels: map[string]string{"skiff.dev/agent-test": id},
		FailurePolicy: "Fail", URL: "https://" + ln.Addr().String() + agent.MutatePath, Labels: agent.Labels(name),
	})
	if err != nil {
		t.Fatal(err)
	}
	// applied as agent install applies it, so the agent's publishing of
	// its CA bundle must leave the installer's fields alone
	if _, err := kc.Apply(ctx, []*unstructured.Unstructured{wh}, kube.ApplyOptions{FieldManager: agent.InstallFieldManager}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before the namespaces go (cleanups run last first)
		_ = kc.Delete(context.Background(), []kube.ObjectRef{kube.RefOf(wh)}, kube.DeleteOptions{})
	})

	dest, _ := images.ParseDestination(reg+"/site", false)
	r, err := oci.NewRegistry(dest.Host, oci.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := &agent.Mutator{Policy: agent.Policy{Registry: dest, Namespace: sysNS}, Resolver: agent.RegistryResolver{Registry: r}}
	rot := &agent.Rotator{
		Store: &agent.KubeStore{Client: kc, Namespace: sysNS, Secret: name, Webhook: name, Labels: agent.Labels(name)},
		Options: agent.CertOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
			Lifetime: 20 * time.Second, RenewBefore: 12 * time.Second, Propagation: 4 * time.Second},
	}
	served := make(chan error, 1)
	go func() {
		served <- agent.Serve(ctx, m, rot, agent.ServeOptions{Listener: ln, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	// The agent's first certificate may take a moment to reach the API
	// server's view of the webhook configuration.
	var p *unstructured.Unstructured
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err = createPod(ctx, kc, appNS, "reloader", reloader)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("creating the pod: %v", err)
	}
	if got := podImage(p); got != want {
		t.Fatalf("pod image %s, want %s", got, want)
	}
	t.Logf("rewritten: %s -> %s", reloader, podImage(p))

	_, err = createPod(ctx, kc, appNS, "missing", "ghcr.io/example/missing:1.0")
	if err == nil || !strings.Contains(err.Error(), "ghcr.io/example/missing:1.0 is not in the site registry") {
		t.Fatalf("pod with a missing image: %v, want a refusal naming the image", err)
	}
	t.Logf("refused: %v", err)

	// renewals: admissions keep succeeding while the certificate changes
	first := rot.Current().SerialNumber.String()
	serials := map[string]bool{first: true}
	for i := 0; time.Since(deadline.Add(-30*time.Second)) < 5*time.Minute; i++ {
		if len(serials) >= 3 {
			break
		}
		p, err := createPod(ctx, kc, appNS, fmt.Sprintf("rotate-%d", i), "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1")
		if err != nil {
			t.Fatalf("admission %d failed during certificate renewal: %v", i, err)
		}
		if got := podImage(p); got != want {
			t.Fatalf("pod %d image %s, want %s", i, got, want)
		}
		serials[rot.Current().SerialNumber.String()] = true
		time.Sleep(250 * time.Millisecond)
	}
	if len(serials) < 3 {
		t.Fatalf("served %d certificates, want renewals", len(serials))
	}
}

// TestInstallOnControlPlane applies the in-cluster install (image made
// from a static executable and pushed to the site registry) and waits for
// the Deployment to become Available, then uninstalls it, leaving an
// object whose ownership labels were removed.
func TestInstallOnControlPlane(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	exe, err := exec.LookPath("busybox")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("busybox (Debian's busybox-static) is needed as a static executable: %v", err)
		}
		t.Skip("no busybox")
	}
	ctx := context.Background()
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	reg := fixture.Registry(t)
	img, err := agent.PushImage(ctx, agent.ImageOptions{Executable: exe, Target: reg + "/site/skiff/agent:test"})
	if err != nil {
		t.Fatal(err)
	}
	id := randomName(t, "")
	ns, name := "agent-inst-"+id, "skiff-agent-"+id
	o := agent.InstallOptions{
		WebhookOptions: agent.WebhookOptions{Name: name, Namespace: ns,
			// only namespaces nobody has: the test must not touch others
			NamespaceLabels: map[string]string{"skiff.dev/agent-test": id}},
		Image: img.Ref, Registry: reg + "/site", Wait: 2 * time.Minute,
		RegistryCA: []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
	}
	res, err := agent.Install(ctx, kc, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = agent.Uninstall(context.Background(), kc, name, ns) })
	if !res.NamespaceCreated {
		t.Error("namespace not reported as created")
	}
	dep := kube.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: ns, Name: name}
	if err := kc.Wait(ctx, []kube.ObjectRef{dep}, kube.WaitOptions{Timeout: 2 * time.Minute}); err != nil {
		t.Fatalf("agent deployment: %v", err)
	}
	d, err := kc.Get(ctx, dep)
	if err != nil {
		t.Fatal(err)
	}
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if got := cs[0].(map[string]any)["image"]; got != img.Ref {
		t.Errorf("agent image %v, want %s", got, img.Ref)
	}
	if args, _, _ := unstructured.NestedStringSlice(cs[0].(map[string]any), "args"); !strings.Contains(strings.Join(args, " "), "--ca-file /etc/skiff/registry-ca/ca.crt") {
		t.Errorf("agent args %q do not point at the mounted registry CA", args)
	}
	whRef := webhookRef(name)
	hooks := webhooks(ctx, t, kc, name)
	if ca, _, _ := unstructured.NestedString(hooks[0].(map[string]any), "clientConfig", "caBundle"); ca == "" {
		t.Error("webhook has no caBundle")
	}
	// a second install keeps the certificate and changes nothing
	if _, err := agent.Install(ctx, kc, o); err != nil {
		t.Fatalf("second install: %v", err)
	}

	// an object that lost its ownership labels is left alone
	role := kube.ObjectRef{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role", Namespace: ns, Name: name}
	foreign := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{}},
	}}
	if err := kc.Delete(ctx, []kube.ObjectRef{role}, kube.DeleteOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Apply(ctx, []*unstructured.Unstructured{foreign}, kube.ApplyOptions{FieldManager: "someone-else"}); err != nil {
		t.Fatal(err)
	}
	un, err := agent.Uninstall(ctx, kc, name, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(un.Skipped) != 1 || un.Skipped[0].Kind != "Role" {
		t.Errorf("skipped %v, want the relabelled Role", un.Skipped)
	}
	if len(un.Deleted) != 10 {
		t.Errorf("deleted %d objects (%v), want 10", len(un.Deleted), un.Deleted)
	}
	if _, err := kc.Get(ctx, whRef); !errors.Is(err, kube.ErrNotFound) {
		t.Errorf("webhook configuration after uninstall: %v", err)
	}
}

// Install never overwrites a webhook configuration (or any other object
// of the agent's names) that someone else made: it refuses before it
// changes anything, naming what is in the way.
func TestInstallRefusesObjectsNotTheAgents(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	id := randomName(t, "")
	ns, name := "agent-foreign-"+id, "foreign-hook-"+id
	whRef := webhookRef(name)
	foreign := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"owner": "someone-else"}},
	}}
	if _, err := kc.Apply(ctx, []*unstructured.Unstructured{foreign}, kube.ApplyOptions{FieldManager: "someone-else"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kc.Delete(context.Background(), []kube.ObjectRef{whRef}, kube.DeleteOptions{}) })

	o := agent.InstallOptions{
		WebhookOptions: agent.WebhookOptions{Name: name, Namespace: ns, NamespaceLabels: map[string]string{"skiff.dev/agent-test": id}},
		Image:          "127.0.0.1:1/skiff/agent:test", Registry: "127.0.0.1:1/site",
		HostNetwork: "127.0.0.1:9443", APIServer: "127.0.0.1:6443",
	}
	_, err = agent.Install(ctx, kc, o)
	t.Cleanup(func() { _, _ = agent.Uninstall(context.Background(), kc, name, ns) })
	if !errors.Is(err, agent.ErrNotOwned) || !strings.Contains(err.Error(), "MutatingWebhookConfiguration.admissionregistration.k8s.io "+name) {
		t.Fatalf("install over someone else's webhook configuration: %v", err)
	}
	wh, err := kc.Get(ctx, whRef)
	if err != nil {
		t.Fatal(err)
	}
	if l := wh.GetLabels(); l["owner"] != "someone-else" || l[agent.LabelManagedBy] != "" {
		t.Errorf("the foreign webhook configuration was changed: labels %v", l)
	}
	if hooks, _, _ := unstructured.NestedSlice(wh.Object, "webhooks"); len(hooks) != 0 {
		t.Errorf("the foreign webhook configuration got webhooks: %v", hooks)
	}
	if _, err := kc.Get(ctx, kube.ObjectRef{Version: "v1", Kind: "Namespace", Name: ns}); !errors.Is(err, kube.ErrNotFound) {
		t.Errorf("the refused install created its namespace: %v", err)
	}
}

// webhookRef is agent name's MutatingWebhookConfiguration.
func webhookRef(name string) kube.ObjectRef {
	return kube.ObjectRef{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration", Name: name}
}

// webhooks are the webhooks of agent name's webhook configuration.
func webhooks(ctx context.Context, t *testing.T, kc *kube.Client, name string) []any {
	t.Helper()
	wh, err := kc.Get(ctx, webhookRef(name))
	if err != nil {
		t.Fatal(err)
	}
	hooks, _, _ := unstructured.NestedSlice(wh.Object, "webhooks")
	return hooks
}
