package install_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// TestFailuresAndResume covers a failed --atomic upgrade that rolls back, an
// interrupted install that is resumed, secret values kept out of records,
// and diff.
func TestFailuresAndResume(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	kc, err := kube.New(kube.Config{Kubeconfig: s.kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ns := "skiff-e2e-fail"
	cluster := install.Cluster{Kubeconfig: s.kubeconfig}
	defer install.Uninstall(context.Background(), ns, "demo", install.UninstallOptions{Cluster: cluster})

	// An install interrupted after its record was written (the process was
	// killed, here: the context is cancelled when the first chart starts)
	// is resumed by the next install.
	cctx, cancel := context.WithCancel(ctx)
	o := s.options(ns)
	o.Progress = func(e install.Event) {
		if e.Step == "chart" {
			cancel()
		}
	}
	if _, err := install.Install(cctx, s.open(t, s.v1), o); err == nil {
		t.Fatal("interrupted install succeeded")
	}
	store, err := install.Records(cluster)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.Latest(ctx, ns, "demo")
	if err != nil {
		t.Fatalf("no record after the interrupted install: %v", err)
	}
	if rec.Status == release.StatusDeployed {
		t.Fatalf("interrupted install recorded as %s", rec.Status)
	}
	o = s.options(ns)
	o.Values = []install.ValuesFile{{Name: "secret.yaml", Data: []byte("web:\n  apiKey: hunter2-do-not-log\n"), Secret: true}}
	res, err := install.Install(ctx, s.open(t, s.v1), o)
	if err != nil {
		t.Fatalf("resumed install: %v", err)
	}
	if res.Record.Revision != 1 || res.Record.Status != release.StatusDeployed {
		t.Errorf("resumed install: revision %d %s, want 1 deployed", res.Record.Revision, res.Record.Status)
	}
	b, _ := json.Marshal(res.Record)
	if strings.Contains(string(b), "hunter2") {
		t.Errorf("release record holds a secret value: %s", b)
	}
	secrets, err := kc.ListSecrets(ctx, ns, "owner=skiff")
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range secrets {
		for _, v := range sec.Data {
			if strings.Contains(string(v), "hunter2") {
				t.Errorf("secret %s holds a secret value in plain form", sec.Name)
			}
		}
	}

	// diff against v2 lists the web Deployment's image change
	o = s.options(ns)
	changes, err := install.Diff(ctx, s.open(t, s.v2), o)
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	found := false
	for _, c := range changes {
		if c.Op == "change" && strings.Contains(c.Object, "demo-web-web") && strings.Contains(c.Diff, "demo/web@sha256") {
			found = true
		}
	}
	if !found {
		t.Errorf("diff does not show the web image change: %+v", changes)
	}
	// and against v1 with the same values, nothing for manifests
	o.Values = []install.ValuesFile{{Name: "secret.yaml", Data: []byte("web:\n  apiKey: hunter2-do-not-log\n"), Secret: true}}
	changes, err = install.Diff(ctx, s.open(t, s.v1), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Component == "extras" {
			t.Errorf("diff of the installed package shows a change: %+v", c)
		}
	}

	// An --atomic upgrade whose pods can never be scheduled times out and
	// rolls back to revision 1.
	o = s.options(ns)
	o.Set = []string{"web.nodeSelector.skiff-test=nowhere"}
	o.ResetValues = true // revision 1's encrypted values are dropped on purpose
	o.Timeout = 8 * time.Second
	o.Atomic = true
	_, err = install.Upgrade(ctx, s.open(t, s.v2), o)
	if err == nil {
		t.Fatal("upgrade with unschedulable pods succeeded")
	}
	if true {
		t.Logf("upgrade error: %v", err)
	}
	cur, err := store.Deployed(ctx, ns, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Package.Version != "1.0.0" || cur.Revision != 3 {
		t.Errorf("after the atomic rollback the deployed revision is %d (%s), want 3 (1.0.0)", cur.Revision, cur.Package.Version)
	}
	hist, _ := store.History(ctx, ns, "demo")
	var states []string
	for _, r := range hist {
		states = append(states, string(r.Status))
	}
	if want := "superseded failed deployed"; strings.Join(states, " ") != want {
		t.Errorf("history %v, want %s", states, want)
	}
}
