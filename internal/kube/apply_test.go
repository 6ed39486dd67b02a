package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const webYAML = `apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {greeting: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: registry.local/web:1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`

func TestServerVersion(t *testing.T) {
	c := newClient(t)
	v, err := c.ServerVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.Major != "1" {
		t.Errorf("server version %+v", v)
	}
}

func TestApplyDeploymentBecomesReady(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ns := testNamespace(t, c, false) // Apply must create it
	opts := ApplyOptions{Namespace: ns, Labels: map[string]string{"skiff.dev/deployment": "web"}}
	var seen []ObjectRef
	opts.OnApplied = func(r ObjectRef) { seen = append(seen, r) }
	refs, err := c.Apply(ctx, mustParse(t, webYAML), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ConfigMap " + ns + "/web-config", "Deployment.apps " + ns + "/web", "Service " + ns + "/web"}
	if got := refStrings(refs); !slices.Equal(got, want) {
		t.Fatalf("Apply refs = %v, want %v", got, want)
	}
	// applied in waves by kind (Helm's order): the Service before the
	// Deployment; refs keep the manifest's order
	if wantSeen := []ObjectRef{refs[0], refs[2], refs[1]}; !slices.Equal(seen, wantSeen) {
		t.Errorf("OnApplied saw %v, want %v", seen, wantSeen)
	}
	dep, err := c.Get(ctx, refs[1])
	if err != nil {
		t.Fatal(err)
	}
	if dep.GetLabels()["skiff.dev/deployment"] != "web" {
		t.Errorf("labels = %v, want the ownership label", dep.GetLabels())
	}

	var mu sync.Mutex
	statuses := map[string][]string{}
	err = c.Wait(ctx, refs, WaitOptions{Timeout: 90 * time.Second, Interval: 300 * time.Millisecond,
		OnStatus: func(r ObjectRef, status, msg string) {
			mu.Lock()
			defer mu.Unlock()
			statuses[r.Kind] = append(statuses[r.Kind], status)
			t.Logf("%s: %s: %s", r, status, msg)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if s := statuses["Deployment"]; len(s) == 0 || s[len(s)-1] != "Current" {
		t.Errorf("Deployment statuses = %v, want ending in Current", s)
	}

	// applying again is a no-op that succeeds
	if _, err := c.Apply(ctx, mustParse(t, webYAML), ApplyOptions{Namespace: ns}); err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	pods, err := c.List(ctx, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, ns, "app=web")
	if err != nil || len(pods) != 1 {
		t.Errorf("List pods = %d, %v; want 1", len(pods), err)
	}
	if _, err := c.Events(ctx, ns); err != nil {
		t.Errorf("Events: %v", err)
	}
}

func TestWaitTimeoutExplains(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ns := testNamespace(t, c, true)
	// no node has this label: the pod stays Pending, the Deployment unavailable
	y := strings.Replace(webYAML, "      containers:", "      nodeSelector: {skiff.dev/never: \"true\"}\n      containers:", 1)
	refs, err := c.Apply(ctx, mustParse(t, y), ApplyOptions{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	missing := ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "absent"}
	err = c.Wait(ctx, append(refs, missing), WaitOptions{Timeout: 3 * time.Second, Interval: 200 * time.Millisecond})
	var nr *NotReadyError
	if !errors.As(err, &nr) || !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want a NotReadyError", err)
	}
	if len(nr.NotReady) != 2 || nr.NotReady[0].Ref.Kind != "Deployment" || nr.NotReady[0].Status != "InProgress" || nr.NotReady[1].Status != "NotFound" {
		t.Errorf("not ready = %+v", nr.NotReady)
	}
	for _, s := range []string{"2 of 4 objects not ready", "kubectl describe deployment.apps/web -n " + ns, "--timeout"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func crdYAML(group string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.%[1]s}
spec:
  group: %[1]s
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, group)
}

func TestApplyCRDAndCustomResource(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ns := uniqueName(t)
	group := ns + ".skiff.test"
	// custom resource first, CRD and Namespace after: Apply must reorder
	y := fmt.Sprintf(`apiVersion: %[1]s/v1
kind: Widget
metadata: {name: w1, namespace: %[2]s}
spec: {size: 3}
---
%[3]s---
apiVersion: v1
kind: Namespace
metadata: {name: %[2]s}
`, group, ns, crdYAML(group))
	objs := mustParse(t, y)
	t.Cleanup(func() {
		c.Delete(context.Background(), []ObjectRef{
			{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "widgets." + group},
			{Version: "v1", Kind: "Namespace", Name: ns},
		}, DeleteOptions{})
	})

	// a dry run cannot check the custom resource, but must not fail on it
	refs, err := c.Apply(ctx, objs, ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if len(refs) != 3 {
		t.Fatalf("dry run refs = %v", refs)
	}
	if _, err := c.Get(ctx, refs[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("dry run created the namespace: %v", err)
	}

	refs, err = c.Apply(ctx, objs, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Namespace " + ns, "CustomResourceDefinition.apiextensions.k8s.io widgets." + group, "Widget." + group + " " + ns + "/w1"}
	if got := refStrings(refs); !slices.Equal(got, want) {
		t.Fatalf("refs = %v, want %v", got, want)
	}
	w, err := c.Get(ctx, refs[2])
	if err != nil {
		t.Fatal(err)
	}
	if size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size"); size != 3 {
		t.Errorf("widget spec = %v", w.Object["spec"])
	}
	if err := c.Wait(ctx, refs, WaitOptions{Timeout: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
}

func TestApplyDryRun(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ns := testNamespace(t, c, true)
	refs, err := c.Apply(ctx, mustParse(t, webYAML), ApplyOptions{Namespace: ns, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if _, err := c.Get(ctx, r); !errors.Is(err, ErrNotFound) {
			t.Errorf("dry run persisted %s (err %v)", r, err)
		}
	}
	// the server still validates
	bad := strings.Replace(webYAML, "  selector: {matchLabels: {app: web}}\n", "", 1)
	_, err = c.Apply(ctx, mustParse(t, bad), ApplyOptions{Namespace: ns, DryRun: true})
	if err == nil || !strings.Contains(err.Error(), "Deployment.apps "+ns+"/web") {
		t.Errorf("invalid Deployment in dry run: err = %v", err)
	}
	// into a namespace that does not exist yet: skipped, not an error
	if _, err := c.Apply(ctx, mustParse(t, webYAML), ApplyOptions{Namespace: uniqueName(t), DryRun: true}); err != nil {
		t.Errorf("dry run into a future namespace: %v", err)
	}
}

func TestApplyUnknownKind(t *testing.T) {
	c := newClient(t)
	_, err := c.Apply(context.Background(), mustParse(t, "apiVersion: nope.skiff.test/v1\nkind: Gadget\nmetadata: {name: g}\n"), ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "install its CustomResourceDefinition first") {
		t.Errorf("err = %v", err)
	}
}

func TestApplyConflictAndForce(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ns := testNamespace(t, c, true)
	cm := mustParse(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: one}\n")
	if _, err := c.Apply(ctx, cm, ApplyOptions{Namespace: ns, FieldManager: "other-tool"}); err != nil {
		t.Fatal(err)
	}
	cm[0].Object["data"] = map[string]any{"k": "two"}
	_, err := c.Apply(ctx, cm, ApplyOptions{Namespace: ns})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err = %v, want ErrConflict suggesting --force", err)
	}
	if _, err := c.Apply(ctx, cm, ApplyOptions{Namespace: ns, Force: true}); err != nil {
		t.Fatalf("forced apply: %v", err)
	}
}

func TestPruneAndDelete(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ns := testNamespace(t, c, true)
	refs, err := c.Apply(ctx, mustParse(t, webYAML), ApplyOptions{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	nsRef := ObjectRef{Version: "v1", Kind: "Namespace", Name: ns}
	crdRef := ObjectRef{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "widgets.example.com"}
	old := append([]ObjectRef{nsRef, crdRef}, refs...)
	keep := []ObjectRef{refs[0]}
	keep[0].Version = "v2" // the version does not matter
	skipped, err := c.Prune(ctx, old, keep, DeleteOptions{Wait: true, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(skipped, []ObjectRef{nsRef, crdRef}) {
		t.Errorf("skipped = %v", skipped)
	}
	if _, err := c.Get(ctx, refs[0]); err != nil {
		t.Errorf("kept object: %v", err)
	}
	for _, r := range refs[1:] {
		if _, err := c.Get(ctx, r); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s survived the prune (err %v)", r, err)
		}
	}
	// deleting again, and deleting kinds the cluster does not serve, is fine
	gone := ObjectRef{Group: "nope.skiff.test", Version: "v1", Kind: "Gadget", Namespace: ns, Name: "g"}
	if err := c.Delete(ctx, append(refs, gone), DeleteOptions{Wait: true, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, refs[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("ConfigMap survived Delete: %v", err)
	}
}

func refStrings(refs []ObjectRef) []string {
	var s []string
	for _, r := range refs {
		s = append(s, r.String())
	}
	return s
}

// TestWaitNamesTheCause: a wait that times out names the latest Warning
// events of the object's pods (here the scheduler's FailedScheduling).
func TestWaitNamesTheCause(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	ns := uniqueName(t)
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), []ObjectRef{{Version: "v1", Kind: "Namespace", Name: ns}}, DeleteOptions{})
	})
	objs, err := ParseObjects([]byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      nodeSelector: {skiff-test: nowhere}
      containers: [{name: c, image: registry.invalid/stuck:1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := c.Apply(ctx, objs, ApplyOptions{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	err = c.Wait(ctx, refs, WaitOptions{Timeout: 6 * time.Second, OnStatus: func(ref ObjectRef, status, _ string) { seen = append(seen, ref.Name+":"+status) }})
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("wait: %v, want a NotReadyError", err)
	}
	if !strings.Contains(err.Error(), "Deployment.apps "+ns+"/stuck") || !strings.Contains(err.Error(), "FailedScheduling") {
		t.Errorf("wait error does not name the object and the cause:\n%v", err)
	}
	if len(seen) == 0 {
		t.Error("OnStatus never said what the wait waits for")
	}
}
