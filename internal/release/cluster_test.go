package release_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// TestSecretsDriverOnCluster runs the Store over real Secrets.
func TestSecretsDriverOnCluster(t *testing.T) {
	ctx := context.Background()
	c, err := kube.New(kube.Config{Kubeconfig: fixture.Kubeconfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	rand.Read(b)
	ns := "release-test-" + hex.EncodeToString(b)
	if err := c.EnsureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Delete(context.Background(), []kube.ObjectRef{{Version: "v1", Kind: "Namespace", Name: ns}}, kube.DeleteOptions{})
	})

	d := release.NewSecrets(c)
	s := release.NewStore(d, release.StoreOptions{MaxHistory: 2})
	newRec := func(st release.Status) *release.Record {
		return &release.Record{Deployment: "shop", Namespace: ns, Status: st,
			Package:    release.Package{Name: "shop", Version: "1.0.0"},
			Components: []release.Component{{Name: "web", Kind: release.KindManifests, Manifest: "kind: ConfigMap\n"}},
			Values:     map[string]any{"replicas": 2.0}}
	}

	if _, err := s.Latest(ctx, ns, "shop"); !errors.Is(err, release.ErrNotFound) {
		t.Fatalf("Latest of nothing: err = %v, want ErrNotFound", err)
	}
	r1 := newRec(release.StatusPendingInstall)
	if err := s.Create(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if r1.Revision != 1 {
		t.Fatalf("first revision = %d", r1.Revision)
	}
	r1.Status = release.StatusDeployed
	if err := s.Update(ctx, r1); err != nil {
		t.Fatalf("update of a created record: %v", err)
	}

	// optimistic concurrency across two readers
	x, err := s.Get(ctx, ns, "shop", 1)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := s.Get(ctx, ns, "shop", 1)
	x.Description = "x"
	if err := s.Update(ctx, x); err != nil {
		t.Fatal(err)
	}
	y.Description = "y"
	if err := s.Update(ctx, y); !errors.Is(err, release.ErrConflict) {
		t.Fatalf("stale update: err = %v, want ErrConflict", err)
	}

	for _, st := range []release.Status{release.StatusFailed, release.StatusFailed} {
		if err := s.Create(ctx, newRec(st)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.History(ctx, ns, "shop")
	if err != nil {
		t.Fatal(err)
	}
	// MaxHistory 2 keeps the deployed revision 1 and the newest, 3
	if len(h) != 2 || h[0].Revision != 1 || h[1].Revision != 3 {
		t.Fatalf("history = %v", h)
	}
	if h[0].Description != "x" || h[0].Values["replicas"] != 2.0 || h[0].Components[0].Manifest != "kind: ConfigMap\n" {
		t.Errorf("record did not round-trip: %+v", h[0])
	}
	dep, err := s.Deployed(ctx, ns, "shop")
	if err != nil || dep.Revision != 1 {
		t.Fatalf("Deployed = %v, %v", dep, err)
	}
	if err := s.Create(ctx, &release.Record{Deployment: "other", Namespace: ns, Revision: 1, Status: release.StatusDeployed}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Deployments(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, r := range all {
		if r.Namespace == ns {
			mine = append(mine, r.String())
		}
	}
	if len(mine) != 2 || mine[0] != "deployment "+ns+"/other revision 1" || mine[1] != "deployment "+ns+"/shop revision 3" {
		t.Errorf("Deployments = %v", mine)
	}
	sec, err := c.GetSecret(ctx, ns, release.SecretName("shop", 3))
	if err != nil {
		t.Fatal(err)
	}
	if sec.Type != release.SecretType || sec.Labels[release.LabelStatus] != "failed" || sec.Labels[release.LabelOwner] != "skiff" {
		t.Errorf("secret %s: type %s labels %v", sec.Name, sec.Type, sec.Labels)
	}
	if err := s.Purge(ctx, ns, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.History(ctx, ns, "shop"); !errors.Is(err, release.ErrNotFound) {
		t.Errorf("after Purge: %v", err)
	}
}
