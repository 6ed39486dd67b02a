package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLockContention(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ns := testNamespace(t, c, false) // Lock creates the namespace

	unlock, err := c.Lock(ctx, ns, "shop", "alice", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// held past its TTL: renewal keeps it
	time.Sleep(1500 * time.Millisecond)
	_, err = c.Lock(ctx, ns, "shop", "bob", time.Minute)
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: err = %v, want ErrLocked", err)
	}
	if le.Holder != "alice" || !strings.Contains(err.Error(), "deployment shop is locked by alice") || !strings.Contains(err.Error(), "kubectl -n "+ns+" delete lease skiff.lock.shop") {
		t.Errorf("LockedError = %v", err)
	}
	// another deployment is independent
	unlockOther, err := c.Lock(ctx, ns, "other", "bob", time.Minute)
	if err != nil {
		t.Fatalf("lock of another deployment: %v", err)
	}
	if err := unlockOther(ctx); err != nil {
		t.Fatal(err)
	}

	if err := unlock(ctx); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if err := unlock(ctx); err != nil {
		t.Fatalf("second unlock: %v", err)
	}
	unlock, err = c.Lock(ctx, ns, "shop", "bob", time.Minute)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	if err := c.ForceUnlock(ctx, ns, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := unlock(ctx); err != nil {
		t.Errorf("unlock after force-unlock: %v", err)
	}
}

func TestLockTakesOverExpiredLease(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ns := testNamespace(t, c, true)
	// a holder that died ten minutes ago with a one-minute lease
	dead := "dead-process"
	then := metav1.NewMicroTime(time.Now().Add(-10 * time.Minute))
	secs := int32(60)
	_, err := c.typed.CoordinationV1().Leases(ns).Create(ctx, &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: LeasePrefix + "shop"},
		Spec:       coordv1.LeaseSpec{HolderIdentity: &dead, LeaseDurationSeconds: &secs, AcquireTime: &then, RenewTime: &then},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := c.Lock(ctx, ns, "shop", "alive", time.Minute)
	if err != nil {
		t.Fatalf("Lock over an expired lease: %v", err)
	}
	l, err := c.typed.CoordinationV1().Leases(ns).Get(ctx, LeasePrefix+"shop", metav1.GetOptions{})
	if err != nil || *l.Spec.HolderIdentity != "alive" {
		t.Fatalf("lease after takeover: %+v, %v", l, err)
	}
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.typed.CoordinationV1().Leases(ns).Get(ctx, LeasePrefix+"shop", metav1.GetOptions{}); err == nil {
		t.Error("unlock left the lease behind")
	}
}
