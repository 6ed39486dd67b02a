package kube

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSecrets(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	ns := testNamespace(t, c, true)

	if _, err := c.GetSecret(ctx, ns, "missing"); !errors.Is(err, ErrNotFound) || !apierrors.IsNotFound(err) {
		t.Fatalf("GetSecret of missing: err = %v, want ErrNotFound (and an API NotFound)", err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "rec", Namespace: ns, Labels: map[string]string{"owner": "skiff"}},
		Data:       map[string][]byte{"k": []byte("v1")},
	}
	if _, err := c.CreateSecret(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSecret(ctx, s); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: err = %v, want ErrExists", err)
	}

	a, err := c.GetSecret(ctx, ns, "rec")
	if err != nil {
		t.Fatal(err)
	}
	b := a.DeepCopy()
	a.Data["k"] = []byte("a")
	if _, err := c.UpdateSecret(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.Data["k"] = []byte("b")
	if _, err := c.UpdateSecret(ctx, b); !errors.Is(err, ErrConflict) || !apierrors.IsConflict(err) {
		t.Fatalf("stale update: err = %v, want ErrConflict", err)
	}

	list, err := c.ListSecrets(ctx, ns, "owner=skiff")
	if err != nil || len(list) != 1 || string(list[0].Data["k"]) != "a" {
		t.Fatalf("ListSecrets = %v, %v", list, err)
	}
	if list, _ := c.ListSecrets(ctx, ns, "owner=other"); len(list) != 0 {
		t.Errorf("selector ignored: %d secrets", len(list))
	}
	if err := c.DeleteSecret(ctx, ns, "rec"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSecret(ctx, ns, "rec"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: err = %v, want ErrNotFound", err)
	}
}
