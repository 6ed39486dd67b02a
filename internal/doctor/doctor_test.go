package doctor_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/internal/doctor"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/kube"
)

// certPEM makes a self-signed certificate valid from notBefore to
// notAfter, and its key.
func certPEM(t testing.TB, cn string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func find(rep *doctor.Report, check, subject string) *doctor.Result {
	for i, r := range rep.Results {
		if r.Check == check && r.Subject == subject {
			return &rep.Results[i]
		}
	}
	return nil
}

func TestDoctor(t *testing.T) {
	kubeconfig := fixture.Kubeconfig(t)
	ctx := context.Background()
	kc, err := kube.New(kube.Config{Kubeconfig: kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("skiff-doctor-%d", time.Now().UnixNano()%1e6)
	if err := kc.EnsureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kc.Delete(context.Background(), []kube.ObjectRef{{Version: "v1", Kind: "Namespace", Name: ns}}, kube.DeleteOptions{})
	})
	now := time.Now()
	for name, span := range map[string][2]time.Time{
		"expiring": {now.Add(-time.Hour), now.Add(5 * 24 * time.Hour)},
		"expired":  {now.Add(-10 * 24 * time.Hour), now.Add(-24 * time.Hour)},
		"healthy":  {now.Add(-time.Hour), now.Add(365 * 24 * time.Hour)},
	} {
		crt, key := certPEM(t, name+".example", span[0], span[1])
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}
		if _, err := kc.CreateSecret(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	// A webhook whose CA expired; it matches nothing real.
	oldCA, _ := certPEM(t, "old-ca", now.Add(-48*time.Hour), now.Add(-time.Hour))
	hook := ns + "-hook"
	whYAML := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: %s
webhooks:
  - name: check.doctor.skiff.test
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    clientConfig:
      url: https://127.0.0.1:1/validate
      caBundle: %s
    rules:
      - apiGroups: [doctor.skiff.test]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [nothings]
`, hook, base64.StdEncoding.EncodeToString(oldCA))

	// The skiff agent's webhook, its CA expiring soon: renewal is broken.
	agentCA, _ := certPEM(t, "agent-ca", now.Add(-time.Hour), now.Add(5*24*time.Hour))
	agentHook := ns + "-agent"
	whYAML += fmt.Sprintf(`---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: %s
  labels: {app.kubernetes.io/managed-by: skiff, skiff.dev/agent: %s}
webhooks:
  - name: images.agent.skiff.dev
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    clientConfig:
      url: https://127.0.0.1:1/mutate
      caBundle: %s
    rules:
      - apiGroups: [doctor.skiff.test]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [nothings]
`, agentHook, agentHook, base64.StdEncoding.EncodeToString(agentCA))

	reg := fixture.Registry(t)
	fixture.PushImage(t, reg+"/doctor/present:1", fixture.ImageOptions{Layers: []int{256}, Seed: 3})
	depYAML := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {app: doctor}
  template:
    metadata:
      labels: {app: doctor}
    spec:
      initContainers:
        - name: init
          image: %[1]s/doctor/present:1
      containers:
        - name: missing
          image: %[1]s/doctor/missing:1
        - name: foreign
          image: nginx:1.27
`, reg)
	objs, err := kube.ParseObjects([]byte(depYAML + "---\n" + whYAML))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := kc.Apply(ctx, objs, kube.ApplyOptions{FieldManager: "skiff-test", Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kc.Delete(context.Background(), refs, kube.DeleteOptions{}) })

	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			fmt.Fprintln(w, "ok")
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(hub.Close)

	rep, err := doctor.Run(ctx, doctor.Options{Kubeconfig: kubeconfig, Namespace: ns, Registry: reg + "/airgap",
		RegistryRoot: t.TempDir(), Hub: hub.URL, Days: 30, DiskSpace: fixedDisk(60, 100)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		check, subject string
		want           doctor.Severity
		msg            string
	}{
		{"cluster", "", doctor.OK, "reachable"},
		{"certificates", "Secret " + ns + "/expiring", doctor.Warn, "expires in"},
		{"certificates", "Secret " + ns + "/expired", doctor.Fail, "expired"},
		{"ca-bundles", "ValidatingWebhookConfiguration " + hook + " (webhook check.doctor.skiff.test)", doctor.Fail, "expired"},
		{"ca-bundles", "MutatingWebhookConfiguration " + agentHook + " (webhook images.agent.skiff.dev)", doctor.Warn, "expires in"},
		{"clock", "API server", doctor.OK, "within"},
		{"images", "image " + reg + "/doctor/missing:1", doctor.Fail, "missing from the registry; used by Deployment " + ns + "/app"},
		{"images", "image nginx:1.27", doctor.Warn, "not from the local registry"},
		{"registry", reg, doctor.OK, "/v2/"},
		{"disk", "", doctor.OK, "free of"},
		{"hub", hub.URL, doctor.OK, "healthy"},
	} {
		r := find(rep, tc.check, tc.subject)
		if tc.check == "disk" {
			for i := range rep.Results {
				if rep.Results[i].Check == "disk" {
					r = &rep.Results[i]
				}
			}
		}
		if r == nil {
			t.Errorf("no %s result for %q", tc.check, tc.subject)
			continue
		}
		if r.Severity != tc.want || !strings.Contains(r.Message, tc.msg) {
			t.Errorf("%s %q: %s %q, want %s containing %q", tc.check, tc.subject, r.Severity, r.Message, tc.want, tc.msg)
		}
		if r.Severity != doctor.OK && r.Fix == "" {
			t.Errorf("%s %q: no fix hint", tc.check, tc.subject)
		}
	}
	if r := find(rep, "ca-bundles", "MutatingWebhookConfiguration "+agentHook+" (webhook images.agent.skiff.dev)"); r == nil || !strings.Contains(r.Fix, "skiff agent renews") {
		t.Errorf("agent webhook: fix hint does not point at the agent: %+v", r)
	}
	if r := find(rep, "certificates", "Secret "+ns+"/healthy"); r != nil {
		t.Errorf("healthy certificate reported: %+v", r)
	}
	if r := find(rep, "images", "image "+reg+"/doctor/present:1"); r != nil {
		t.Errorf("present image reported: %+v", r)
	}
	if !rep.Failed() || rep.Fail < 3 || rep.Warn < 2 {
		t.Errorf("report counts ok %d warn %d fail %d", rep.OK, rep.Warn, rep.Fail)
	}
	var nodes int
	for _, r := range rep.Results {
		if r.Check == "clock" && strings.HasPrefix(r.Subject, "node ") {
			nodes++
		}
	}
	if nodes == 0 {
		t.Error("no node clock results")
	}
}

func TestDoctorWithoutCluster(t *testing.T) {
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(sick.Close)
	var checks []doctor.Check
	for _, c := range doctor.Checks() {
		if !c.Cluster {
			checks = append(checks, c)
		}
	}
	rep, err := doctor.Run(context.Background(), doctor.Options{Checks: checks, Hub: sick.URL, Registry: "127.0.0.1:1", RegistryRoot: "/nonexistent/skiff"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ check, msg string }{
		{"hub", "database unreachable"},
		{"registry", "cannot reach registry"},
		{"disk", "statfs"},
	} {
		var r *doctor.Result
		for i := range rep.Results {
			if rep.Results[i].Check == tc.check {
				r = &rep.Results[i]
			}
		}
		if r == nil || r.Severity != doctor.Fail || !strings.Contains(r.Message, tc.msg) {
			t.Errorf("%s: %+v, want a failure containing %q", tc.check, r, tc.msg)
		}
	}
	if rep.Fail != 3 || find(rep, "cluster", "") != nil {
		t.Errorf("report %+v", rep)
	}
}

func TestParseCertificates(t *testing.T) {
	now := time.Now()
	a, _ := certPEM(t, "a", now, now.Add(time.Hour))
	b, key := certPEM(t, "b", now, now.Add(time.Hour))
	for _, tc := range []struct {
		name string
		in   []byte
		n    int
		err  string
	}{
		{"one", a, 1, ""},
		{"chain with a key", append(append(append([]byte{}, a...), key...), b...), 2, ""},
		{"empty", nil, 0, "no PEM certificate"},
		{"garbage", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0, "certificate 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := doctor.ParseCertificates(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want error %q", err, tc.err)
				}
				return
			}
			if err != nil || len(certs) != tc.n {
				t.Fatalf("got %d certs, %v; want %d", len(certs), err, tc.n)
			}
		})
	}
}

func FuzzParseCertificates(f *testing.F) {
	now := time.Now()
	a, key := certPEM(f, "a", now, now.Add(time.Hour))
	f.Add(a)
	f.Add(append(key, a...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := doctor.ParseCertificates(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificates")
		}
	})
}

// fixedDisk measures every directory as free of total bytes.
func fixedDisk(free, total uint64) func(string) (uint64, uint64, error) {
	return func(string) (uint64, uint64, error) { return free, total, nil }
}

// TestDiskThresholds runs the disk check on measured figures, so it does
// not depend on the free space of the machine running it.
func TestDiskThresholds(t *testing.T) {
	disk := []doctor.Check{}
	for _, c := range doctor.Checks() {
		if c.Name == "disk" {
			disk = append(disk, c)
		}
	}
	for _, tc := range []struct {
		name       string
		free       uint64
		warn, fail float64
		want       doctor.Severity
	}{
		{"roomy", 50, 0, 0, doctor.OK},
		{"below the default warning", 10, 0, 0, doctor.Warn},
		{"below the default failure", 4, 0, 0, doctor.Fail},
		{"custom warning", 30, 40, 20, doctor.Warn},
		{"custom failure", 30, 50, 35, doctor.Fail},
		{"checks off", 0, -1, -1, doctor.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := doctor.Run(context.Background(), doctor.Options{Checks: disk, RegistryRoot: "/registry",
				DiskSpace: fixedDisk(tc.free, 100), DiskWarnPercent: tc.warn, DiskFailPercent: tc.fail})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Results) != 1 || rep.Results[0].Severity != tc.want {
				t.Fatalf("results %+v, want one %s", rep.Results, tc.want)
			}
			if tc.want != doctor.OK && rep.Results[0].Fix == "" {
				t.Errorf("no fix hint: %+v", rep.Results[0])
			}
		})
	}
}
