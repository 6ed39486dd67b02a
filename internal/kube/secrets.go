package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GetSecret reads a Secret; a missing one gives ErrNotFound.
func (c *Client) GetSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	s, err := c.typed.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading secret %s/%s: %w", ns, name, classify(err))
	}
	return s, nil
}

// ListSecrets lists the Secrets of namespace ns ("" means all namespaces)
// matching the label selector.
func (c *Client) ListSecrets(ctx context.Context, ns, labelSelector string) ([]corev1.Secret, error) {
	list, err := c.typed.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: labelSelector})
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", classify(err))
	}
	return list.Items, nil
}

// CreateSecret creates s in s.Namespace; an existing one gives ErrExists.
func (c *Client) CreateSecret(ctx context.Context, s *corev1.Secret) (*corev1.Secret, error) {
	out, err := c.typed.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{FieldManager: DefaultFieldManager})
	if err != nil {
		return nil, fmt.Errorf("creating secret %s/%s: %w", s.Namespace, s.Name, classify(err))
	}
	return out, nil
}

// UpdateSecret replaces s. When s.ResourceVersion is set and the Secret
// changed since, it fails with ErrConflict; a missing one gives ErrNotFound.
func (c *Client) UpdateSecret(ctx context.Context, s *corev1.Secret) (*corev1.Secret, error) {
	out, err := c.typed.CoreV1().Secrets(s.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: DefaultFieldManager})
	if err != nil {
		return nil, fmt.Errorf("updating secret %s/%s: %w", s.Namespace, s.Name, classify(err))
	}
	return out, nil
}

// DeleteSecret deletes a Secret; a missing one gives ErrNotFound.
func (c *Client) DeleteSecret(ctx context.Context, ns, name string) error {
	err := c.typed.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil {
		return fmt.Errorf("deleting secret %s/%s: %w", ns, name, classify(err))
	}
	return nil
}
