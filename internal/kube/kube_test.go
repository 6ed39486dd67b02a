package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/internal/fixture"
)

// newClient connects to the test control plane (or skips).
func newClient(t *testing.T) *Client {
	t.Helper()
	c, err := New(Config{Kubeconfig: fixture.Kubeconfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// uniqueName returns a DNS-1123 label unique to this test run.
func uniqueName(t *testing.T) string {
	b := make([]byte, 3)
	rand.Read(b)
	base := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	return base + "-" + hex.EncodeToString(b)
}

// testNamespace returns the name of a namespace unique to the test,
// deleted when the test ends. create makes it now; otherwise the test is
// expected to create it.
func testNamespace(t *testing.T, c *Client, create bool) string {
	t.Helper()
	ns := uniqueName(t)
	if create {
		if err := c.EnsureNamespace(context.Background(), ns); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		err := c.typed.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		if err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("deleting test namespace: %v", err)
		}
	})
	return ns
}

func mustParse(t *testing.T, yaml string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := ParseObjects([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
