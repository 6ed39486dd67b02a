package agent_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/agent"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/mirror"
)

// TestAgentOnRealNode is the agent in the real-node tier. The test rig's
// node has no kube-proxy or DNS, so `skiff agent install` (a static skiff
// built here, which pushes itself as the agent's image) runs the agent in
// the node's network on 127.0.0.1, reaching the API server at its address,
// and the API server calls the webhook there. A pod naming an upstream
// image that no chart names is rewritten to the site registry by digest
// and runs on the node. With the agent down, the default failure policy
// (Fail) refuses pods; Ignore admits them unchanged.
func TestAgentOnRealNode(t *testing.T) {
	node := fixture.RealNode(t)
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	start := time.Now()
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}

	// skiff itself, statically linked: the agent's image is made from it
	skiff := filepath.Join(t.TempDir(), "skiff")
	build := exec.Command("go", "build", "-o", skiff, "github.com/skiffhq/skiff/cmd/skiff")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build skiff: %v\n%s", err, out)
	}
	t.Logf("static skiff built after %s", time.Since(start).Round(time.Millisecond))

	// the site registry holds an image loaded from quay.io; the node pulls
	// from it over plain HTTP, and has no mirror for quay.io: only the
	// agent's rewrite lets the pod start
	site := fixture.Registry(t)
	prefix := site + "/airgap"
	const upstream = "quay.io/skiff-agent-test/app:1.0"
	img := fixture.PushBusybox(t, prefix+"/"+upstream, fixture.BusyboxOptions{Files: map[string]string{"etc/skiff-version": "agent\n"}})
	files, err := mirror.Files(mirror.Containerd, mirror.Options{Registry: prefix, Upstreams: []string{"quay.io"}, PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	var siteFiles []mirror.File
	for _, f := range files {
		if strings.HasPrefix(f.Path, site+"/") {
			siteFiles = append(siteFiles, f)
		}
	}
	if len(siteFiles) == 0 {
		t.Fatalf("no containerd hosts.toml for %s in %v", site, files)
	}
	node.WriteHosts(t, siteFiles)

	id := randomName(t, "")
	ns, name, podNS := "agent-node-"+id, "skiff-agent-"+id, "agent-node-pods-"+id
	// only this test's namespace is sent to the agent
	namespace(t, kc, podNS, map[string]string{"skiff.dev/agent-test": id})
	t.Cleanup(func() { _, _ = agent.Uninstall(context.Background(), kc, name, ns) })
	addr := freeAddr(t)
	install := exec.CommandContext(ctx, skiff, "agent", "install", "--kubeconfig", kubeconfig,
		"--registry", prefix, "--name", name, "--namespace", ns, "--namespace-label", "skiff.dev/agent-test="+id,
		"--host-network", addr, "--api-server", apiServer(t, kubeconfig),
		"--node-selector", "kubernetes.io/hostname="+node.Name, "--toleration", fixture.NodeTaintKey+":NoSchedule",
		"--wait", "2m")
	install.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	t0 := time.Now()
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("skiff agent install: %v\n%s\n%s", err, out, nodeEvents(ctx, kc, ns))
	}
	t.Logf("agent installed and Available after %s", time.Since(t0).Round(time.Millisecond))
	agentPods, err := kc.List(ctx, podGVK, ns, agent.LabelAgent+"="+name)
	if err != nil || len(agentPods) != 1 {
		t.Fatalf("agent pods: %d, %v", len(agentPods), err)
	}
	if got, _, _ := unstructured.NestedString(agentPods[0].Object, "spec", "nodeName"); got != node.Name {
		t.Fatalf("agent runs on %q, want the real node %s", got, node.Name)
	}

	// a pod naming the upstream image: rewritten, pulled from the site, Ready
	t0 = time.Now()
	refs, err := kc.Apply(ctx, []*unstructured.Unstructured{nodePod(t, node, podNS, "app", upstream)}, kube.ApplyOptions{FieldManager: "skiff-test"})
	if err != nil {
		t.Fatalf("pod naming %s: %v", upstream, err)
	}
	if err := kc.Wait(ctx, refs, kube.WaitOptions{Timeout: 2 * time.Minute}); err != nil {
		t.Fatalf("pod naming %s: %v\n%s", upstream, err, nodeEvents(ctx, kc, podNS))
	}
	p, err := kc.Get(ctx, refs[0])
	if err != nil {
		t.Fatal(err)
	}
	want := prefix + "/quay.io/skiff-agent-test/app@" + img.Digest.String()
	if got := podImage(p); got != want {
		t.Errorf("pod image %q, want the agent's rewrite %q", got, want)
	}
	if got, _, _ := unstructured.NestedString(p.Object, "spec", "nodeName"); got != node.Name {
		t.Errorf("pod runs on %q, want %s", got, node.Name)
	}
	cs, _, _ := unstructured.NestedSlice(p.Object, "status", "containerStatuses")
	if len(cs) != 1 || !strings.HasSuffix(fmt.Sprint(cs[0].(map[string]any)["imageID"]), img.Digest.String()) {
		t.Errorf("container statuses %v: want the image %s running", cs, img.Digest)
	}
	t.Logf("rewritten pod Ready on the real node after %s", time.Since(t0).Round(time.Millisecond))

	// the agent down: its Deployment scaled to zero, its pod gone
	t0 = time.Now()
	scale := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": map[string]any{"replicas": int64(0)}}}
	if _, err := kc.Apply(ctx, []*unstructured.Unstructured{scale}, kube.ApplyOptions{FieldManager: "skiff-test", Force: true}); err != nil {
		t.Fatal(err)
	}
	for {
		pods, err := kc.List(ctx, podGVK, ns, agent.LabelAgent+"="+name)
		if err != nil {
			t.Fatal(err)
		}
		if len(pods) == 0 {
			break
		}
		if time.Since(t0) > time.Minute {
			t.Fatalf("agent pod still there a minute after scaling to zero")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Fail (the default): refused, naming the webhook
	_, err = kc.Apply(ctx, []*unstructured.Unstructured{nodePod(t, node, podNS, "refused", upstream)}, kube.ApplyOptions{FieldManager: "skiff-test"})
	if err == nil || !strings.Contains(err.Error(), "images.agent.skiff.dev") {
		t.Fatalf("pod with the agent down and failurePolicy Fail: %v, want a refusal naming the webhook", err)
	}
	t.Logf("agent down, failurePolicy Fail: %v", err)
	// Ignore: admitted unchanged (its upstream name cannot be pulled here:
	// it is created on the kwok node and not run)
	hooks := webhooks(ctx, t, kc, name)
	hooks[0].(map[string]any)["failurePolicy"] = "Ignore"
	ignore := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
		"metadata": map[string]any{"name": name}, "webhooks": hooks}}
	if _, err := kc.Apply(ctx, []*unstructured.Unstructured{ignore}, kube.ApplyOptions{FieldManager: agent.InstallFieldManager, Force: true}); err != nil {
		t.Fatal(err)
	}
	admitted := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "admitted", "namespace": podNS},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": upstream}}}}}
	// the API server may still hold the old configuration for a moment
	var got *unstructured.Unstructured
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		refs, err := kc.Apply(ctx, []*unstructured.Unstructured{admitted}, kube.ApplyOptions{FieldManager: "skiff-test"})
		if err == nil {
			if got, err = kc.Get(ctx, refs[0]); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod with the agent down and failurePolicy Ignore: %v", err)
		}
	}
	if img := podImage(got); img != upstream {
		t.Errorf("pod admitted with failurePolicy Ignore has image %q, want %q unchanged", img, upstream)
	}
	t.Logf("failure policy shown after %s; agent on the real node took %s", time.Since(t0).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

var podGVK = kube.ObjectRef{Version: "v1", Kind: "Pod"}.GroupVersionKind()

// nodePod is a busybox pod on the real node, Ready when the image's
// version file is there.
func nodePod(t *testing.T, n fixture.Node, ns, name, image string) *unstructured.Unstructured {
	t.Helper()
	y := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s}
spec:
%s  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    readinessProbe: {exec: {command: [cat, /etc/skiff-version]}, periodSeconds: 1}
`, name, ns, n.PodPlacement(2), image)
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// freeAddr is a free port on 127.0.0.1 for the agent in the node's network.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// apiServer is HOST:PORT of the kubeconfig's (only) cluster.
func apiServer(t *testing.T, kubeconfig string) string {
	t.Helper()
	b, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		Clusters []struct {
			Cluster struct{ Server string } `json:"cluster"`
		} `json:"clusters"`
	}
	if err := yaml.Unmarshal(b, &kc); err != nil || len(kc.Clusters) == 0 {
		t.Fatalf("kubeconfig %s: %v", kubeconfig, err)
	}
	u, err := url.Parse(kc.Clusters[0].Cluster.Server)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// nodeEvents are the Warning events of ns, to explain a failure.
func nodeEvents(ctx context.Context, kc *kube.Client, ns string) string {
	evs, err := kc.Events(ctx, ns)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range evs {
		if e.Type == "Warning" {
			fmt.Fprintf(&b, "  %s/%s: %s: %s\n", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	return b.String()
}
