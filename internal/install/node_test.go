package install_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/mirror"
	"github.com/skiffhq/skiff/internal/oci"
)

// TestRealNode is the real-node tier: a package built from runnable
// busybox images is loaded into the embedded registry and installed; its
// pods run on the real node (containerd, runc, kubelet) from the
// relocated digests, an upgrade and a rollback replace them, and a pod
// naming docker.io/library/busybox by its upstream name is pulled from
// the site registry through the generated node mirror configuration.
func TestRealNode(t *testing.T) {
	node := fixture.RealNode(t)
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	start := time.Now()

	// connected side: "docker.io" is an upstream registry on loopback
	up := fixture.Registry(t)
	v1 := fixture.PushBusybox(t, up+"/library/busybox:1.35", fixture.BusyboxOptions{Files: map[string]string{"etc/skiff-version": "one\n"}})
	v2 := fixture.PushBusybox(t, up+"/library/busybox:1.36", fixture.BusyboxOptions{Files: map[string]string{"etc/skiff-version": "two\n"}})
	remote := oci.RemoteOptions{Mirrors: map[string]string{"docker.io": up}}
	dir := t.TempDir()
	archive := func(version, tag string) string {
		spec := filepath.Join(dir, version)
		fixture.WriteFiles(t, spec, map[string]string{
			"skiff.yaml": "apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: realnode, version: " + version + "}\n" +
				"manifests:\n  - {name: web, files: [web.yaml]}\n",
			"web.yaml": webDeployment(node, "docker.io/library/busybox:"+tag),
		})
		out := filepath.Join(dir, "realnode-"+version+".skiff")
		if _, err := build.Build(ctx, build.Options{Spec: spec, Output: out, Remote: remote}); err != nil {
			t.Fatalf("build %s: %v", version, err)
		}
		return out
	}
	a1, a2 := archive("1.0.0", "1.35"), archive("2.0.0", "1.36")

	// air-gapped side: the embedded registry, and the node told how to reach it
	site := fixture.Registry(t)
	prefix := site + "/airgap"
	files, err := mirror.Files(mirror.Containerd, mirror.Options{Registry: prefix, Upstreams: []string{"docker.io"}, PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	node.WriteHosts(t, files)

	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	const ns = "skiff-real-node"
	o := install.Options{Deployment: "realnode", Namespace: ns, Cluster: install.Cluster{Kubeconfig: kubeconfig},
		Load: install.LoadOptions{Registry: prefix}, Timeout: 3 * time.Minute}
	t.Cleanup(func() {
		_ = install.Uninstall(context.Background(), ns, "realnode", install.UninstallOptions{Cluster: o.Cluster, Timeout: time.Minute})
	})

	res, err := install.Install(ctx, openArchive(t, a1, nil), o)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, nodeEvents(ctx, kc, ns))
	}
	ref1 := res.Load.Map["docker.io/library/busybox:1.35"]
	if !strings.HasPrefix(ref1, prefix+"/") || !strings.HasSuffix(ref1, "@"+v1.Digest.String()) {
		t.Fatalf("relocated reference %q: want %s/...@%s", ref1, prefix, v1.Digest)
	}
	t.Logf("install: pods Ready after %s", time.Since(start).Round(time.Millisecond))
	before := runningPods(ctx, t, kc, ns, node, v1.Digest.String(), 2)

	// upgrade: new pods from the 1.36 image replace the running ones
	t0 := time.Now()
	res, err = install.Upgrade(ctx, openArchive(t, a2, nil), o)
	if err != nil {
		t.Fatalf("upgrade: %v\n%s", err, nodeEvents(ctx, kc, ns))
	}
	waitReplaced(ctx, t, kc, ns, node, v2.Digest.String(), before)
	t.Logf("upgrade: pods replaced after %s", time.Since(t0).Round(time.Millisecond))
	upgraded := runningPods(ctx, t, kc, ns, node, v2.Digest.String(), 2)

	// rollback to revision 1: pods from the 1.35 image again
	t0 = time.Now()
	if _, err := install.Rollback(ctx, ns, "realnode", install.RollbackOptions{Cluster: o.Cluster, Revision: 1, Timeout: 3 * time.Minute}); err != nil {
		t.Fatalf("rollback: %v\n%s", err, nodeEvents(ctx, kc, ns))
	}
	waitReplaced(ctx, t, kc, ns, node, v1.Digest.String(), upgraded)
	t.Logf("rollback: pods replaced after %s", time.Since(t0).Round(time.Millisecond))

	// a pod nobody relocated: the upstream name, pulled through the node mirror
	t0 = time.Now()
	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: upstream-name, namespace: %s}
spec:
%s  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: docker.io/library/busybox:1.36
    imagePullPolicy: Always
    command: ["/bin/sh", "-c", "grep -qx two /etc/skiff-version && exec sleep 2147483647"]
    readinessProbe: {exec: {command: [cat, /etc/skiff-version]}, periodSeconds: 1}
`, ns, node.PodPlacement(2))
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(pod), &u.Object); err != nil {
		t.Fatal(err)
	}
	refs, err := kc.Apply(ctx, []*unstructured.Unstructured{u}, kube.ApplyOptions{FieldManager: "skiff-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Wait(ctx, refs, kube.WaitOptions{Timeout: 2 * time.Minute}); err != nil {
		t.Fatalf("pod with the upstream name: %v\n%s", err, nodeEvents(ctx, kc, ns))
	}
	p := get(t, kc, "Pod", "", "v1", ns, "upstream-name")
	if id := imageID(p); !strings.HasSuffix(id, v2.Digest.String()) {
		t.Errorf("pod with the upstream name runs image %q, want digest %s", id, v2.Digest)
	}
	t.Logf("upstream name through the mirror: Ready after %s; tier took %s", time.Since(t0).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	_ = kc.Delete(ctx, refs, kube.DeleteOptions{})
}

// webDeployment is two busybox httpd replicas on the real node, Ready
// when their httpGet probe answers with the image's version file.
func webDeployment(n fixture.Node, image string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
` + n.PodPlacement(6) + `      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: ` + image + `
        command: ["/bin/sh", "-c", "mkdir -p /www && cp /etc/skiff-version /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1}
        resources: {limits: {cpu: 100m, memory: 32Mi}}
`
}

func listPods(ctx context.Context, t *testing.T, kc *kube.Client, ns string) []unstructured.Unstructured {
	t.Helper()
	pods, err := kc.List(ctx, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, ns, "app=web")
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

// runningPods checks that exactly n web pods run on the node, Ready, from
// the image with digest dgst, and returns their names.
func runningPods(ctx context.Context, t *testing.T, kc *kube.Client, ns string, n fixture.Node, dgst string, want int) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, p := range listPods(ctx, t, kc, ns) {
		if p.GetDeletionTimestamp() != nil {
			continue
		}
		node, _, _ := unstructured.NestedString(p.Object, "spec", "nodeName")
		phase, _, _ := unstructured.NestedString(p.Object, "status", "phase")
		if node != n.Name || phase != "Running" || !podReady(p) || !strings.HasSuffix(imageID(&p), dgst) {
			t.Errorf("pod %s: node %s, phase %s, ready %v, image %s; want Running and Ready on %s from %s",
				p.GetName(), node, phase, podReady(p), imageID(&p), n.Name, dgst)
		}
		names[p.GetName()] = true
	}
	if len(names) != want {
		t.Errorf("%d web pods, want %d", len(names), want)
	}
	return names
}

// waitReplaced waits until every web pod is new (none of old), Ready and
// runs the image with digest dgst.
func waitReplaced(ctx context.Context, t *testing.T, kc *kube.Client, ns string, n fixture.Node, dgst string, old map[string]bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		done := true
		pods := listPods(ctx, t, kc, ns)
		for _, p := range pods {
			if old[p.GetName()] || !podReady(p) || !strings.HasSuffix(imageID(&p), dgst) {
				done = false
			}
		}
		if done && len(pods) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("web pods not replaced by Ready pods of %s within 2m\n%s", dgst, nodeEvents(ctx, kc, ns))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func podReady(p unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(p.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// imageID is the image the runtime reports for the pod's first container.
func imageID(p *unstructured.Unstructured) string {
	cs, _, _ := unstructured.NestedSlice(p.Object, "status", "containerStatuses")
	if len(cs) == 0 {
		return ""
	}
	m, _ := cs[0].(map[string]any)
	id, _ := m["imageID"].(string)
	return id
}

// nodeEvents lists the namespace's events, to explain a failure.
func nodeEvents(ctx context.Context, kc *kube.Client, ns string) string {
	evs, err := kc.Events(ctx, ns)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s/%s: %s\n", e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
	}
	return b.String()
}
