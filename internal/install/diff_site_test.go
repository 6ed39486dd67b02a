package install

import (
	"context"
	"strings"
	"testing"
)

// diff compares with the live cluster: an object deleted out of band and
// one edited out of band show, and an existing deployment needs no
// --registry (the recorded one is used).
func TestDiffLiveInMemory(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	v1 := buildPackage(t, shopFiles("1.0.0", "hello", false))
	if _, err := Install(ctx, v1, f.options("shop", "shop")); err != nil {
		t.Fatalf("install: %v", err)
	}
	o := f.options("shop", "shop")
	o.Load.Registry = ""
	changes, err := Diff(ctx, v1, o)
	if err != nil {
		t.Fatalf("diff without --registry: %v", err)
	}
	if len(changes) != 0 {
		t.Fatalf("diff of the installed package: %+v", changes)
	}

	// Out of band: the manifests' ConfigMap is deleted, the chart's edited.
	f.kube.mu.Lock()
	for k, ob := range f.kube.objects {
		switch {
		case ob.GetKind() == "ConfigMap" && ob.GetName() == "extras":
			delete(f.kube.objects, k)
		case ob.GetKind() == "ConfigMap" && ob.GetName() == "shop-web-config":
			ob.Object["data"] = map[string]any{"greeting": "edited by hand"}
		}
	}
	f.kube.mu.Unlock()
	changes, err = Diff(ctx, v1, o)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Op+" "+c.Component+": "+c.Object)
		if c.Op == "change" && (!strings.Contains(c.Diff, "-   greeting: edited by hand") || !strings.Contains(c.Diff, "+   greeting: hello")) {
			t.Errorf("drift diff: %s", c.Diff)
		}
	}
	want := []string{
		"add extras: ConfigMap shop/extras (missing from the cluster: deleted out of band)",
		"change web: ConfigMap shop/shop-web-config",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
