package doctor

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/internal/agent"
)

// maxCertBytes bounds the PEM parsed from one field.
const maxCertBytes = 1 << 20

// ParseCertificates decodes the CERTIFICATE blocks of a PEM bundle. Other
// block types are skipped; a bundle without a certificate is an error.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if len(data) > maxCertBytes {
		return nil, fmt.Errorf("certificate bundle is %d bytes: too large", len(data))
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// judgeCerts grades the certificates of one subject by the first to
// expire (or one not yet valid).
func judgeCerts(e *Env, check, subject string, certs []*x509.Certificate, fix string) Result {
	now := e.Now()
	horizon := time.Duration(e.Days) * 24 * time.Hour
	first := certs[0]
	for _, c := range certs {
		if now.Before(c.NotBefore) {
			return Result{Check: check, Severity: Warn, Subject: subject,
				Message: fmt.Sprintf("certificate %q is not valid before %s", name(c), c.NotBefore.UTC().Format(time.RFC3339)),
				Fix:     "check this host's and the issuer's clocks (see the clock check)"}
		}
		if c.NotAfter.Before(first.NotAfter) {
			first = c
		}
	}
	left := first.NotAfter.Sub(now)
	when := first.NotAfter.UTC().Format(time.RFC3339)
	switch {
	case left <= 0:
		return Result{Check: check, Severity: Fail, Subject: subject,
			Message: fmt.Sprintf("certificate %q expired %s ago (%s)", name(first), days(-left), when), Fix: fix}
	case left < horizon:
		return Result{Check: check, Severity: Warn, Subject: subject,
			Message: fmt.Sprintf("certificate %q expires in %s (%s)", name(first), days(left), when), Fix: fix}
	}
	return Result{Check: check, Severity: OK, Subject: subject,
		Message: fmt.Sprintf("valid until %s", when)}
}

func name(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

func days(d time.Duration) string {
	if d < 48*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// checkSecretCerts grades the tls.crt of every kubernetes.io/tls Secret.
// Healthy ones are summed up in one result.
func checkSecretCerts(ctx context.Context, e *Env) []Result {
	secrets, err := e.Kube.ListSecrets(ctx, e.Namespace, "")
	if err != nil {
		return []Result{{Severity: Fail, Message: err.Error(), Fix: "doctor needs to list Secrets: run it with a kubeconfig that may"}}
	}
	var out []Result
	ok := 0
	for _, s := range secrets {
		if s.Type != corev1.SecretTypeTLS {
			continue
		}
		subject := "Secret " + s.Namespace + "/" + s.Name
		certs, err := ParseCertificates(s.Data[corev1.TLSCertKey])
		if err != nil {
			out = append(out, Result{Severity: Warn, Subject: subject, Message: "tls.crt: " + err.Error(), Fix: "put a PEM certificate in tls.crt or delete the Secret"})
			continue
		}
		r := judgeCerts(e, "", subject, certs, fixFor(s))
		if r.Severity == OK {
			ok++
			continue
		}
		out = append(out, r)
	}
	out = append(out, Result{Severity: OK, Message: fmt.Sprintf("%d TLS Secrets valid for more than %d days", ok, e.Days)})
	return out
}

func fixFor(s corev1.Secret) string {
	if s.Annotations["cert-manager.io/certificate-name"] != "" {
		return fmt.Sprintf("cert-manager should renew it: check Certificate %s/%s and its issuer", s.Namespace, s.Annotations["cert-manager.io/certificate-name"])
	}
	return fmt.Sprintf("renew the certificate and replace tls.crt and tls.key in Secret %s/%s", s.Namespace, s.Name)
}

var (
	gvkMutating   = schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration"}
	gvkValidating = schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}
	gvkAPIService = schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}
)

// checkCABundles grades the caBundle certificates of admission webhooks
// and aggregated APIServices: when they expire, the API server stops
// trusting those endpoints.
func checkCABundles(ctx context.Context, e *Env) []Result {
	var out []Result
	ok := 0
	add := func(r Result) {
		if r.Severity == OK {
			ok++
			return
		}
		out = append(out, r)
	}
	for _, gvk := range []schema.GroupVersionKind{gvkMutating, gvkValidating} {
		objs, err := e.Kube.List(ctx, gvk, "", "")
		if err != nil {
			out = append(out, Result{Severity: Warn, Subject: gvk.Kind, Message: err.Error()})
			continue
		}
		for _, o := range objs {
			hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			for _, h := range hooks {
				m, _ := h.(map[string]any)
				hook, _ := m["name"].(string)
				ca, _, _ := unstructured.NestedString(m, "clientConfig", "caBundle")
				if ca == "" {
					continue
				}
				subject := fmt.Sprintf("%s %s (webhook %s)", gvk.Kind, o.GetName(), hook)
				fix := "renew the webhook's serving certificate and its caBundle (usually by the operator that owns it, or cert-manager's CA injector)"
				if name := o.GetLabels()[agent.LabelAgent]; name != "" {
					fix = fmt.Sprintf("the skiff agent renews its certificate and caBundle well before expiry, so renewal is failing: check that Deployment %s runs and read its log (kubectl logs -n NAMESPACE deploy/%s); skiff agent install repairs its RBAC", name, name)
				}
				add(bundleResult(e, subject, ca, fix))
			}
		}
	}
	objs, err := e.Kube.List(ctx, gvkAPIService, "", "")
	if err != nil {
		out = append(out, Result{Severity: Warn, Subject: "APIService", Message: err.Error()})
	}
	for _, o := range objs {
		ca, _, _ := unstructured.NestedString(o.Object, "spec", "caBundle")
		if ca == "" {
			continue
		}
		add(bundleResult(e, "APIService "+o.GetName(), ca, "renew the aggregated API server's certificate and the APIService's caBundle"))
	}
	out = append(out, Result{Severity: OK, Message: fmt.Sprintf("%d webhook and APIService CA bundles valid for more than %d days", ok, e.Days)})
	return out
}

func bundleResult(e *Env, subject, b64, fix string) Result {
	pemData, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Result{Severity: Warn, Subject: subject, Message: "caBundle is not base64: " + err.Error(), Fix: fix}
	}
	certs, err := ParseCertificates(pemData)
	if err != nil {
		return Result{Severity: Warn, Subject: subject, Message: "caBundle: " + err.Error(), Fix: fix}
	}
	return judgeCerts(e, "", subject, certs, fix)
}
