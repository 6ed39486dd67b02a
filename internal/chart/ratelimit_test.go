package chart

import (
	"os"
	"path/filepath"
	"testing"

	skube "github.com/skiffhq/skiff/internal/kube"
)

// TestRateLimits: Helm's clients get skiff's rate limits, not client-go's
// 5 QPS and burst of 10, which throttled a chart of 135 objects for
// seconds (bench/install.sh).
func TestRateLimits(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := c.action("ns")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfg.RESTClientGetter.ToRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.QPS != skube.DefaultQPS || rc.Burst != skube.DefaultBurst {
		t.Errorf("Helm's REST config: QPS %v, burst %d; want %v and %d", rc.QPS, rc.Burst, float32(skube.DefaultQPS), skube.DefaultBurst)
	}
}
