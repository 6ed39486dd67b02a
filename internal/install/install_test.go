package install_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/oci"
	"github.com/skiffhq/skiff/internal/release"
	"github.com/skiffhq/skiff/internal/sign"
)

// demoImages are the images examples/demo references (at 127.0.0.1:15999,
// mirrored to a fixture registry).
var demoImages = []string{"demo/tools:1.0", "demo/web:1.0", "demo/web:2.0", "demo/migrate:1.0", "demo/widget:1.0", "demo/cache:1.0", "demo/report:1.0", "demo/agent:1.0"}

// site is the fixture shared by the lifecycle tests: an upstream registry
// holding the demo images, a signing key and trust, two built archives,
// an air-gap registry and the control plane.
type site struct {
	kubeconfig string
	airgap     string
	trust      *sign.Trust
	v1, v2     string
	v2delta    string
}

func newSite(t *testing.T) *site {
	t.Helper()
	kubeconfig := fixture.Kubeconfig(t)
	up := fixture.Registry(t)
	for i, r := range demoImages {
		fixture.PushImage(t, up+"/"+r, fixture.ImageOptions{Layers: []int{4096, 2048}, Seed: int64(i + 1)})
	}
	key, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	trustDir := t.TempDir()
	pub, err := sign.MarshalPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.AddTrusted(trustDir, pub, "test"); err != nil {
		t.Fatal(err)
	}
	trust, err := sign.LoadTrust(trustDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	remote := oci.RemoteOptions{Mirrors: map[string]string{"127.0.0.1:15999": up}}
	ctx := context.Background()
	s := &site{kubeconfig: kubeconfig, airgap: fixture.Registry(t) + "/airgap", trust: trust}
	s.v1 = filepath.Join(dir, "demo-1.0.0.skiff")
	if _, err := build.Build(ctx, build.Options{Spec: "../../examples/demo", Output: s.v1, Remote: remote, SignKey: key}); err != nil {
		t.Fatalf("build v1: %v", err)
	}
	s.v2 = filepath.Join(dir, "demo-1.1.0.skiff")
	if _, err := build.Build(ctx, build.Options{Spec: "../../examples/demo", Output: s.v2, Remote: remote, SignKey: key,
		Version: "1.1.0", Set: []string{"web.image.tag=2.0", "web.replicas=1"}}); err != nil {
		t.Fatalf("build v2: %v", err)
	}
	// v2 again, as a delta against v1: only the blobs v1 lacks travel
	s.v2delta = filepath.Join(dir, "demo-1.1.0-delta.skiff")
	if _, err := build.Build(ctx, build.Options{Spec: "../../examples/demo", Output: s.v2delta, Remote: remote, SignKey: key,
		Version: "1.1.0", Set: []string{"web.image.tag=2.0", "web.replicas=1"}, DeltaFrom: s.v1}); err != nil {
		t.Fatalf("build v2 delta: %v", err)
	}
	return s
}

func (s *site) open(t *testing.T, path string) *install.Package {
	t.Helper()
	return openArchive(t, path, s.trust)
}

// openArchive opens an archive for a test, checking its signature against
// trust (nil waives it), and closes it when the test ends.
func openArchive(t *testing.T, path string, trust *sign.Trust) *install.Package {
	t.Helper()
	p, err := install.Open(context.Background(), path, bundle.OpenOptions{Trust: trust, SkipSignature: trust == nil})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func (s *site) options(ns string) install.Options {
	return install.Options{
		Deployment: "demo", Namespace: ns, Cluster: install.Cluster{Kubeconfig: s.kubeconfig},
		Load: install.LoadOptions{Registry: s.airgap}, Timeout: 2 * time.Minute,
	}
}

func get(t *testing.T, kc *kube.Client, kind, group, version, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := kc.Get(context.Background(), kube.ObjectRef{Group: group, Version: version, Kind: kind, Namespace: ns, Name: name})
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
	}
	return u
}

func podImages(u *unstructured.Unstructured, path ...string) []string {
	var out []string
	for _, field := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(u.Object, append(path, field)...)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m["image"].(string))
			}
		}
	}
	return out
}

func TestLifecycle(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	kc, err := kube.New(kube.Config{Kubeconfig: s.kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ns := "skiff-e2e"

	// install
	res, err := install.Install(ctx, s.open(t, s.v1), s.options(ns))
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if res.Record.Revision != 1 || res.Record.Status != release.StatusDeployed {
		t.Fatalf("install record: revision %d %s", res.Record.Revision, res.Record.Status)
	}
	if res.Load.Push.BytesPushed == 0 {
		t.Error("first load pushed nothing")
	}
	dep := get(t, kc, "Deployment", "apps", "v1", "demo-web", "demo-web-web")
	imgs := podImages(dep, "spec", "template", "spec")
	if len(imgs) != 2 {
		t.Fatalf("deployment images %v", imgs)
	}
	for _, im := range imgs {
		if !strings.HasPrefix(im, s.airgap+"/") || !strings.Contains(im, "@sha256:") {
			t.Errorf("image %q is not relocated to %s by digest", im, s.airgap)
		}
	}
	webV1 := imgs[1]
	if !available(dep) {
		t.Errorf("deployment demo-web-web is not Available after install")
	}
	sts := get(t, kc, "StatefulSet", "apps", "v1", "demo-web", "demo-web-cache")
	cj := get(t, kc, "CronJob", "batch", "v1", "demo-jobs", "demo-jobs-report")
	ds := get(t, kc, "DaemonSet", "apps", "v1", "demo-web", "demo-agent")
	cr := get(t, kc, "Widget", "demo.skiff.dev", "v1", "demo-web", "demo-web-widget")
	for name, im := range map[string]string{
		"statefulset": podImages(sts, "spec", "template", "spec")[0],
		"cronjob":     podImages(cj, "spec", "jobTemplate", "spec", "template", "spec")[0],
		"daemonset":   podImages(ds, "spec", "template", "spec")[0],
	} {
		if !strings.HasPrefix(im, s.airgap+"/") || !strings.Contains(im, "@sha256:") {
			t.Errorf("%s image %q is not relocated", name, im)
		}
	}
	if im, _, _ := unstructured.NestedString(cr.Object, "spec", "image"); !strings.HasPrefix(im, s.airgap+"/") {
		t.Errorf("custom resource image %q is not relocated", im)
	}

	// a second install of the same deployment is refused; a second load moves nothing
	if _, err := install.Install(ctx, s.open(t, s.v1), s.options(ns)); !errors.Is(err, install.ErrAlreadyInstalled) {
		t.Errorf("second install: got %v, want ErrAlreadyInstalled", err)
	}
	// diff against the live cluster right after install: nothing changes,
	// and the recorded registry stands in for --registry
	do := s.options(ns)
	do.Load.Registry = ""
	changes, err := install.Diff(ctx, s.open(t, s.v1), do)
	if err != nil {
		t.Fatalf("diff without --registry: %v", err)
	}
	for _, c := range changes {
		t.Errorf("diff right after install: %s %s: %s\n%s", c.Op, c.Component, c.Object, c.Diff)
	}
	lr, err := install.Load(ctx, s.open(t, s.v1), install.LoadOptions{Registry: s.airgap})
	if err != nil {
		t.Fatal(err)
	}
	if lr.Push.BytesPushed != 0 || lr.Push.BlobsPushed != 0 {
		t.Errorf("second load pushed %d bytes in %d blobs, want 0", lr.Push.BytesPushed, lr.Push.BlobsPushed)
	}

	// upgrade to 1.1.0 (a delta archive against 1.0.0): web image 2.0, one replica
	full, _ := os.Stat(s.v2)
	delta, _ := os.Stat(s.v2delta)
	if delta.Size() >= full.Size()/2 {
		t.Errorf("delta archive is %d bytes, the full one %d: the delta should omit what v1 holds", delta.Size(), full.Size())
	}
	up, err := install.Upgrade(ctx, s.open(t, s.v2delta), s.options(ns))
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if up.Record.Revision != 2 || up.Record.Package.Version != "1.1.0" {
		t.Fatalf("upgrade record: %d %s", up.Record.Revision, up.Record.Package.Version)
	}
	dep = get(t, kc, "Deployment", "apps", "v1", "demo-web", "demo-web-web")
	webV2 := podImages(dep, "spec", "template", "spec")[1]
	if webV2 == webV1 {
		t.Errorf("upgrade left the web image at %s", webV1)
	}
	if r, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); r != 1 {
		t.Errorf("replicas after upgrade = %d, want 1", r)
	}

	// rollback to 1
	rb, err := install.Rollback(ctx, ns, "demo", install.RollbackOptions{Cluster: install.Cluster{Kubeconfig: s.kubeconfig}, Revision: 1, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if rb.Revision != 3 || rb.Package.Version != "1.0.0" {
		t.Errorf("rollback record: revision %d version %s", rb.Revision, rb.Package.Version)
	}
	dep = get(t, kc, "Deployment", "apps", "v1", "demo-web", "demo-web-web")
	if got := podImages(dep, "spec", "template", "spec")[1]; got != webV1 {
		t.Errorf("after rollback web image = %s, want %s", got, webV1)
	}
	store, err := install.Records(install.Cluster{Kubeconfig: s.kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := store.History(ctx, ns, "demo")
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, r := range hist {
		states = append(states, string(r.Status))
	}
	if want := "superseded superseded deployed"; strings.Join(states, " ") != want {
		t.Errorf("history statuses %v, want %s", states, want)
	}

	// uninstall removes everything and the records
	if err := install.Uninstall(ctx, ns, "demo", install.UninstallOptions{Cluster: install.Cluster{Kubeconfig: s.kubeconfig}}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	for _, ref := range []kube.ObjectRef{
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "demo-web", Name: "demo-web-web"},
		{Group: "apps", Version: "v1", Kind: "DaemonSet", Namespace: "demo-web", Name: "demo-agent"},
		{Group: "batch", Version: "v1", Kind: "CronJob", Namespace: "demo-jobs", Name: "demo-jobs-report"},
	} {
		if _, err := kc.Get(ctx, ref); !errors.Is(err, kube.ErrNotFound) {
			t.Errorf("%s after uninstall: got %v, want not found", ref, err)
		}
	}
	if _, err := store.Latest(ctx, ns, "demo"); !errors.Is(err, release.ErrNotFound) {
		t.Errorf("records after uninstall: got %v, want ErrNotFound", err)
	}
}

func available(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Available" && m["status"] == "True" {
			return true
		}
	}
	return false
}
