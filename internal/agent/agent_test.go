package agent

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/internal/images"
)

const (
	site     = "10.0.0.5:5000"
	reloader = "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1"
)

var dgst = digest.Digest("sha256:" + strings.Repeat("a", 64))

// memResolver holds repo:ref → digest.
type memResolver map[string]digest.Digest

func (m memResolver) Resolve(_ context.Context, repo, ref string) (digest.Digest, error) {
	if d, ok := m[repo+":"+ref]; ok {
		return d, nil
	}
	return "", fmt.Errorf("resolving %s:%s: %w", repo, ref, ErrNotInRegistry)
}

func review(kind, ns string, obj map[string]any) *admissionv1.AdmissionRequest {
	raw, _ := json.Marshal(obj)
	return &admissionv1.AdmissionRequest{
		UID: "1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: kind}, Namespace: ns,
		Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}
}

func pod(labels map[string]any, imgs ...string) map[string]any {
	var cs []any
	for i, im := range imgs {
		cs = append(cs, map[string]any{"name": fmt.Sprint("c", i), "image": im})
	}
	return map[string]any{"metadata": map[string]any{"labels": labels}, "spec": map[string]any{"containers": cs}}
}

func TestReview(t *testing.T) {
	res := memResolver{
		"mirror/quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1": dgst,
		"mirror/docker.io/library/busybox:1.37":                                 dgst,
		"mirror/docker.io/library/busybox:" + dgst.String():                     dgst,
	}
	policy := Policy{Registry: images.Destination{Host: site, Prefix: "mirror"}, Namespace: "skiff-system",
		ExcludeNamespaces: []string{"legacy"}, ExcludeLabels: map[string]string{"skiff.dev/agent": "skip"}}
	relocated := site + "/mirror/quay.io/prometheus-operator/prometheus-config-reloader@" + dgst.String()
	tests := []struct {
		name      string
		req       *admissionv1.AdmissionRequest
		warn      bool
		wantPatch string // substring of the JSON patch; "" means no patch
		wantDeny  string
		wantWarn  string
	}{
		{name: "rewritten by digest", req: review("Pod", "apps", pod(nil, reloader)),
			wantPatch: `{"op":"replace","path":"/spec/containers/0/image","value":"` + relocated + `"}`},
		{name: "short name, pinned digest", req: review("Pod", "apps", pod(nil, "busybox@"+dgst.String())),
			wantPatch: site + `/mirror/docker.io/library/busybox@` + dgst.String()},
		{name: "already in the site registry", req: review("Pod", "apps", pod(nil, relocated))},
		{name: "same registry, other path left alone", req: review("Pod", "apps", pod(nil, site+"/other/x:1"))},
		{name: "missing image is refused, named", req: review("Pod", "apps", pod(nil, reloader, "ghcr.io/org/missing:2")),
			wantDeny: "image ghcr.io/org/missing:2 is not in the site registry " + site + "/mirror"},
		{name: "missing image only warned", warn: true, req: review("Pod", "apps", pod(nil, "ghcr.io/org/missing:2", reloader)),
			wantPatch: "/spec/containers/1/image", wantWarn: "ghcr.io/org/missing:2"},
		{name: "own namespace untouched", req: review("Pod", "skiff-system", pod(nil, "ghcr.io/org/missing:2"))},
		{name: "kube-system untouched", req: review("Pod", "kube-system", pod(nil, "ghcr.io/org/missing:2"))},
		{name: "excluded namespace", req: review("Pod", "legacy", pod(nil, "ghcr.io/org/missing:2"))},
		{name: "excluded label", req: review("Pod", "apps", pod(map[string]any{"skiff.dev/agent": "skip"}, "ghcr.io/org/missing:2"))},
		{name: "pod template", req: review("Deployment", "apps", map[string]any{"spec": map[string]any{"template": pod(nil, "busybox:1.37")}}),
			wantPatch: `"path":"/spec/template/spec/containers/0/image"`},
		{name: "init container", req: review("Pod", "apps", map[string]any{"spec": map[string]any{"initContainers": []any{map[string]any{"name": "i", "image": reloader}}}}),
			wantPatch: `/spec/initContainers/0/image`},
		{name: "other kinds pass", req: review("ConfigMap", "apps", map[string]any{"data": map[string]any{"image": "x"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy
			p.Warn = tt.warn
			m := &Mutator{Policy: p, Resolver: res}
			resp := m.Review(context.Background(), tt.req)
			if tt.wantDeny != "" {
				if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, tt.wantDeny) {
					t.Fatalf("response %+v, want a refusal containing %q", resp, tt.wantDeny)
				}
				return
			}
			if !resp.Allowed {
				t.Fatalf("refused: %v", resp.Result.Message)
			}
			if got := string(resp.Patch); (tt.wantPatch == "") != (got == "") || !strings.Contains(got, tt.wantPatch) {
				t.Errorf("patch %s, want one containing %q", got, tt.wantPatch)
			}
			if tt.wantWarn != "" && (len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], tt.wantWarn)) {
				t.Errorf("warnings %q, want one naming %s", resp.Warnings, tt.wantWarn)
			}
		})
	}
}

// memStore is a CertStore in memory that records the bundles published.
type memStore struct {
	st        *CertState
	published [][]byte
}

func (m *memStore) Load(context.Context) (*CertState, error) {
	if m.st == nil {
		return nil, nil
	}
	c := *m.st
	return &c, nil
}
func (m *memStore) Save(_ context.Context, s *CertState) error { c := *s; m.st = &c; return nil }
func (m *memStore) PublishCABundle(_ context.Context, b []byte) error {
	m.published = append(m.published, b)
	return nil
}

// TestRotation walks a certificate through its life on a fake clock: the
// served certificate is always trusted by the bundle published before it
// was served, renewal stages first and promotes later, and expired CAs
// leave the bundle.
func TestRotation(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := &memStore{}
	r := &Rotator{Store: store, Options: CertOptions{
		DNSNames: []string{"skiff-agent.skiff-system.svc"}, Lifetime: 100 * time.Hour, RenewBefore: 30 * time.Hour,
		Propagation: time.Hour, Now: func() time.Time { return now },
	}}
	if err := r.Options.Check(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var serials []string
	for step := 0; step < 400; step++ { // 200 hours in half-hour steps
		if err := r.Reconcile(ctx); err != nil {
			t.Fatalf("at %s: %v", now, err)
		}
		leaf := r.Current()
		if !now.Before(leaf.NotAfter) {
			t.Fatalf("at %s the served certificate expired (%s)", now, leaf.NotAfter)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(store.published[len(store.published)-1])
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, DNSName: "skiff-agent.skiff-system.svc"}); err != nil {
			t.Fatalf("at %s the served certificate is not trusted by the published bundle: %v", now, err)
		}
		if s := leaf.SerialNumber.String(); len(serials) == 0 || serials[len(serials)-1] != s {
			serials = append(serials, s)
		}
		now = now.Add(30 * time.Minute)
	}
	// renewed at 70h, 140h (each 1h staged): three certificates in 200h
	if len(serials) != 3 {
		t.Errorf("served %d certificates in 200h, want 3", len(serials))
	}
	if n := strings.Count(string(store.st.CABundle), "BEGIN CERTIFICATE"); n > 2 {
		t.Errorf("bundle holds %d CAs, want expired ones pruned", n)
	}
}

func TestCertOptionsCheck(t *testing.T) {
	if err := (CertOptions{Lifetime: time.Hour, RenewBefore: 2 * time.Hour}).Check(); err == nil || !strings.Contains(err.Error(), "renew-before") {
		t.Errorf("renew-before beyond lifetime: %v", err)
	}
	if err := (CertOptions{Lifetime: time.Hour, RenewBefore: time.Minute, Propagation: 2 * time.Minute}).Check(); err == nil {
		t.Error("propagation beyond renew-before accepted")
	}
	if err := (CertOptions{}).Check(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestObjectsPlacement: the host-network, API server and placement
// options reach the agent's Pod, its arguments and the webhook URL.
func TestObjectsPlacement(t *testing.T) {
	base := InstallOptions{Image: site + "/skiff/agent@" + dgst.String(), Registry: site}
	tests := []struct {
		name    string
		o       func(*InstallOptions)
		want    []string // in the JSON of the Deployment and webhook
		wantErr string
	}{
		{name: "in-cluster default", o: func(*InstallOptions) {},
			want: []string{`"containerPort":8443`, `"service":{"name":"skiff-agent"`}},
		{name: "host network", o: func(o *InstallOptions) {
			o.HostNetwork, o.APIServer = "127.0.0.1:9443", "127.0.0.1:6443"
			o.NodeSelector = map[string]string{"kubernetes.io/hostname": "n1"}
			o.Tolerations = []Toleration{{Key: "skiff.dev/real-node", Effect: "NoSchedule"}, {Key: "dedicated", Value: "infra"}}
		}, want: []string{
			`"hostNetwork":true`, `"containerPort":9443`, `"host":"127.0.0.1","path":"/healthz","port":9443`,
			`"--addr","127.0.0.1:9443","--cert-ip","127.0.0.1"`,
			`{"name":"KUBERNETES_SERVICE_HOST","value":"127.0.0.1"},{"name":"KUBERNETES_SERVICE_PORT","value":"6443"}`,
			`"nodeSelector":{"kubernetes.io/hostname":"n1"}`,
			`{"effect":"NoSchedule","key":"skiff.dev/real-node","operator":"Exists"}`, `{"key":"dedicated","operator":"Equal","value":"infra"}`,
			`"url":"https://127.0.0.1:9443/mutate"`,
		}},
		{name: "host network without port", o: func(o *InstallOptions) { o.HostNetwork = "127.0.0.1" }, wantErr: "use IP:PORT"},
		{name: "host network by name", o: func(o *InstallOptions) { o.HostNetwork = "localhost:9443" }, wantErr: "use IP:PORT"},
		{name: "API server without port", o: func(o *InstallOptions) { o.APIServer = "127.0.0.1" }, wantErr: "use HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.o(&o)
			objs, err := Objects(o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for _, u := range objs {
				b, err := json.Marshal(u.Object)
				if err != nil {
					t.Fatal(err)
				}
				all.Write(b)
			}
			for _, w := range tt.want {
				if !strings.Contains(all.String(), w) {
					t.Errorf("objects lack %s:\n%s", w, all.String())
				}
			}
		})
	}
}

func TestParseToleration(t *testing.T) {
	tests := []struct {
		in      string
		want    Toleration
		wantErr bool
	}{
		{in: "skiff.dev/real-node:NoSchedule", want: Toleration{Key: "skiff.dev/real-node", Effect: "NoSchedule"}},
		{in: "dedicated=infra", want: Toleration{Key: "dedicated", Value: "infra"}},
		{in: "k=v:NoExecute", want: Toleration{Key: "k", Value: "v", Effect: "NoExecute"}},
		{in: "k:Sometimes", wantErr: true},
		{in: "=v", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseToleration(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParseToleration(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
