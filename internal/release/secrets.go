package release

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/klauspost/compress/zstd"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Secret layout of a stored record.
const (
	// SecretType is the type of release Secrets.
	SecretType corev1.SecretType = "skiff.dev/release.v1"
	// SecretPrefix starts every release Secret's name:
	// skiff.release.v1.<deployment>.v<revision>.
	SecretPrefix = "skiff.release.v1."
	// PayloadKey is the data key holding the zstd-compressed JSON record.
	PayloadKey = "release"

	// Labels on release Secrets.
	LabelOwner      = "owner" // always "skiff"
	LabelDeployment = "skiff.dev/deployment"
	LabelRevision   = "skiff.dev/revision"
	LabelStatus     = "skiff.dev/status"
	LabelPackage    = "skiff.dev/package"

	// MaxPayload bounds the compressed record: the API server refuses
	// Secrets with more than 1 MiB of data.
	MaxPayload = 1<<20 - 1024
	// maxDecoded bounds the decompressed record, against zstd bombs.
	maxDecoded = 32 << 20
)

// Secrets is the part of a cluster client the Secrets driver needs;
// *kube.Client implements it. Errors must keep the API server's status
// error in their chain (apierrors.IsNotFound, IsConflict and
// IsAlreadyExists are used to classify them).
type Secrets interface {
	GetSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	// ListSecrets lists Secrets in namespace ("" means all) matching a
	// label selector.
	ListSecrets(ctx context.Context, namespace, labelSelector string) ([]corev1.Secret, error)
	CreateSecret(ctx context.Context, s *corev1.Secret) (*corev1.Secret, error)
	UpdateSecret(ctx context.Context, s *corev1.Secret) (*corev1.Secret, error)
	DeleteSecret(ctx context.Context, namespace, name string) error
}

// SecretsDriver stores each revision in its own Secret in the deployment's
// namespace.
type SecretsDriver struct {
	s Secrets
}

// NewSecrets returns a Driver over Secrets.
func NewSecrets(s Secrets) *SecretsDriver { return &SecretsDriver{s: s} }

// SecretName is the name of the Secret holding a revision.
func SecretName(deployment string, revision int) string {
	return SecretPrefix + deployment + ".v" + strconv.Itoa(revision)
}

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(maxDecoded), zstd.WithDecoderMaxWindow(8<<20))
)

// encodeRecord returns the compressed JSON payload of r.
func encodeRecord(r *Record) ([]byte, error) {
	js, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", r, err)
	}
	z := encoder.EncodeAll(js, nil)
	if len(z) > MaxPayload {
		return nil, fmt.Errorf("%s: %w: %d bytes compressed, over the %d-byte limit of a Secret: carry fewer or smaller manifests and values in the package (large manifests fit better in a chart)", r, ErrTooLarge, len(z), MaxPayload)
	}
	return z, nil
}

// decodeRecord parses a payload. It is the parser of untrusted input: the
// bytes come from the cluster.
func decodeRecord(payload []byte) (*Record, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrInvalid, len(payload), MaxPayload)
	}
	js, err := decoder.DecodeAll(payload, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing: %w", ErrInvalid, err)
	}
	if len(js) > maxDecoded {
		return nil, fmt.Errorf("%w: decompressed payload exceeds %d bytes", ErrInvalid, maxDecoded)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: decoding JSON: %w", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the record", ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// fromSecret decodes s and checks that it holds the record its name says.
func fromSecret(s *corev1.Secret) (*Record, error) {
	r, err := decodeRecord(s.Data[PayloadKey])
	if err == nil && (r.Namespace != s.Namespace || SecretName(r.Deployment, r.Revision) != s.Name) {
		err = fmt.Errorf("%w: it holds %s", ErrInvalid, r)
	}
	if err != nil {
		return nil, fmt.Errorf("reading release secret %s/%s: %w: delete it with `kubectl delete secret -n %s %s` if it is not needed", s.Namespace, s.Name, err, s.Namespace, s.Name)
	}
	r.version = s.ResourceVersion
	return r, nil
}

func toSecret(r *Record) (*corev1.Secret, error) {
	payload, err := encodeRecord(r)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{
		LabelOwner:      "skiff",
		LabelDeployment: r.Deployment,
		LabelRevision:   strconv.Itoa(r.Revision),
		LabelStatus:     string(r.Status),
	}
	if len(validation.IsValidLabelValue(r.Package.Name)) == 0 {
		labels[LabelPackage] = r.Package.Name
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:            SecretName(r.Deployment, r.Revision),
			Namespace:       r.Namespace,
			Labels:          labels,
			ResourceVersion: r.version,
		},
		Type: SecretType,
		Data: map[string][]byte{PayloadKey: payload},
	}, nil
}

// Get implements Driver.
func (d *SecretsDriver) Get(ctx context.Context, namespace, deployment string, revision int) (*Record, error) {
	s, err := d.s.GetSecret(ctx, namespace, SecretName(deployment, revision))
	if apierrors.IsNotFound(err) {
		return nil, &NotFoundError{Namespace: namespace, Deployment: deployment, Revision: revision}
	}
	if err != nil {
		return nil, err
	}
	if s.Type != SecretType {
		return nil, fmt.Errorf("secret %s/%s has type %q, not %q: it is not a skiff release record", s.Namespace, s.Name, s.Type, SecretType)
	}
	return fromSecret(s)
}

// List implements Driver.
func (d *SecretsDriver) List(ctx context.Context, namespace, deployment string) ([]*Record, error) {
	if len(validation.IsValidLabelValue(deployment)) > 0 {
		return nil, nil // no record can carry that label
	}
	return d.list(ctx, namespace, LabelOwner+"=skiff,"+LabelDeployment+"="+deployment)
}

// ListAll implements Driver.
func (d *SecretsDriver) ListAll(ctx context.Context, namespace string) ([]*Record, error) {
	return d.list(ctx, namespace, LabelOwner+"=skiff")
}

func (d *SecretsDriver) list(ctx context.Context, namespace, selector string) ([]*Record, error) {
	secrets, err := d.s.ListSecrets(ctx, namespace, selector)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for i := range secrets {
		if secrets[i].Type != SecretType {
			continue
		}
		r, err := fromSecret(&secrets[i])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sortRecords(out)
	return out, nil
}

// Create implements Driver. On success r learns its storage version, so
// a later Update of r detects concurrent changes.
func (d *SecretsDriver) Create(ctx context.Context, r *Record) error {
	if err := r.Validate(); err != nil {
		return err
	}
	s, err := toSecret(r)
	if err != nil {
		return err
	}
	s.ResourceVersion = ""
	out, err := d.s.CreateSecret(ctx, s)
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("%s: %w", r, ErrExists)
	}
	if err != nil {
		return err
	}
	r.version = out.ResourceVersion
	return nil
}

// Update implements Driver. A record never read or created through this
// driver overwrites whatever is stored.
func (d *SecretsDriver) Update(ctx context.Context, r *Record) error {
	if err := r.Validate(); err != nil {
		return err
	}
	s, err := toSecret(r)
	if err != nil {
		return err
	}
	if s.ResourceVersion == "" {
		cur, err := d.s.GetSecret(ctx, r.Namespace, s.Name)
		if apierrors.IsNotFound(err) {
			return &NotFoundError{Namespace: r.Namespace, Deployment: r.Deployment, Revision: r.Revision}
		}
		if err != nil {
			return err
		}
		s.ResourceVersion = cur.ResourceVersion
	}
	out, err := d.s.UpdateSecret(ctx, s)
	switch {
	case apierrors.IsNotFound(err):
		return &NotFoundError{Namespace: r.Namespace, Deployment: r.Deployment, Revision: r.Revision}
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s: %w: another skiff operation changed it; retry (%w)", r, ErrConflict, err)
	case err != nil:
		return err
	}
	r.version = out.ResourceVersion
	return nil
}

// Delete implements Driver.
func (d *SecretsDriver) Delete(ctx context.Context, namespace, deployment string, revision int) error {
	err := d.s.DeleteSecret(ctx, namespace, SecretName(deployment, revision))
	if apierrors.IsNotFound(err) {
		return &NotFoundError{Namespace: namespace, Deployment: deployment, Revision: revision}
	}
	return err
}
