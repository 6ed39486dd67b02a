package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/internal/kube"
)

// Secret keys besides tls.crt and tls.key.
const (
	keyCABundle  = "ca.crt"
	keyNextCert  = "next.crt"
	keyNextKey   = "next.key"
	annPromoteAt = "skiff.dev/promote-at"
)

// FieldManager is the server-side apply field manager of the agent.
const FieldManager = "skiff-agent"

// KubeStore keeps the certificate state in a Secret and publishes the CA
// bundle to every webhook of a MutatingWebhookConfiguration.
type KubeStore struct {
	Client    *kube.Client
	Namespace string
	// Secret and Webhook name the Secret and the
	// MutatingWebhookConfiguration.
	Secret, Webhook string
	// Labels are set on a Secret the store creates (ownership labels).
	Labels map[string]string

	mu        sync.Mutex
	rv        string // resourceVersion of the loaded Secret
	published []byte
	checked   time.Time
}

// Load implements CertStore.
func (k *KubeStore) Load(ctx context.Context) (*CertState, error) {
	s, err := k.Client.GetSecret(ctx, k.Namespace, k.Secret)
	if errors.Is(err, kube.ErrNotFound) {
		k.setRV("")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	k.setRV(s.ResourceVersion)
	st := &CertState{
		Cert: s.Data[corev1.TLSCertKey], Key: s.Data[corev1.TLSPrivateKeyKey], CABundle: s.Data[keyCABundle],
		NextCert: s.Data[keyNextCert], NextKey: s.Data[keyNextKey],
	}
	if v := s.Annotations[annPromoteAt]; v != "" {
		if st.PromoteAt, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return nil, fmt.Errorf("secret %s/%s: annotation %s: %w", k.Namespace, k.Secret, annPromoteAt, err)
		}
	}
	return st, nil
}

func (k *KubeStore) setRV(rv string) {
	k.mu.Lock()
	k.rv = rv
	k.mu.Unlock()
}

// Save implements CertStore. It fails with kube.ErrConflict when the
// Secret changed since Load (another replica renewed it).
func (k *KubeStore) Save(ctx context.Context, st *CertState) error {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: k.Secret, Namespace: k.Namespace, Labels: k.Labels, Annotations: map[string]string{}},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey: st.Cert, corev1.TLSPrivateKeyKey: st.Key, keyCABundle: st.CABundle,
		},
	}
	if len(st.NextCert) > 0 {
		s.Data[keyNextCert], s.Data[keyNextKey] = st.NextCert, st.NextKey
		s.Annotations[annPromoteAt] = st.PromoteAt.UTC().Format(time.RFC3339Nano)
	}
	k.mu.Lock()
	rv := k.rv
	k.mu.Unlock()
	var out *corev1.Secret
	var err error
	if rv == "" {
		out, err = k.Client.CreateSecret(ctx, s)
	} else {
		s.ResourceVersion = rv
		out, err = k.Client.UpdateSecret(ctx, s)
	}
	if err != nil {
		return err
	}
	k.setRV(out.ResourceVersion)
	return nil
}

// republishEvery bounds how long the store trusts that the published
// bundle is still in the webhook configuration (someone may re-apply it).
const republishEvery = time.Minute

// PublishCABundle implements CertStore: it sets caBundle on every webhook
// of the configuration. A missing configuration is not an error (the
// agent may start before it is created).
func (k *KubeStore) PublishCABundle(ctx context.Context, bundle []byte) error {
	k.mu.Lock()
	fresh := bytes.Equal(k.published, bundle) && time.Since(k.checked) < republishEvery
	k.mu.Unlock()
	if fresh {
		return nil
	}
	ref := kube.ObjectRef{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration", Name: k.Webhook}
	obj, err := k.Client.Get(ctx, ref)
	if errors.Is(err, kube.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// Apply only the fields the agent owns: each webhook's name and
	// caBundle.
	want := base64.StdEncoding.EncodeToString(bundle)
	hooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
	var mine []any
	same := true
	for _, h := range hooks {
		hm, _ := h.(map[string]any)
		if got, _, _ := unstructured.NestedString(hm, "clientConfig", "caBundle"); got != want {
			same = false
		}
		mine = append(mine, map[string]any{"name": hm["name"], "clientConfig": map[string]any{"caBundle": want}})
	}
	if same {
		k.mu.Lock()
		k.published, k.checked = bytes.Clone(bundle), time.Now()
		k.mu.Unlock()
		return nil
	}
	patch := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
		"metadata": map[string]any{"name": k.Webhook}, "webhooks": mine,
	}}
	if _, err := k.Client.Apply(ctx, []*unstructured.Unstructured{patch}, kube.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("publishing the CA bundle: %w", err)
	}
	k.mu.Lock()
	k.published, k.checked = bytes.Clone(bundle), time.Now()
	k.mu.Unlock()
	return nil
}
