package release

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: no such deployment or revision.
	ErrNotFound = errors.New("release not found")
	// ErrExists: Create of a revision that is already stored.
	ErrExists = errors.New("release revision already exists")
	// ErrConflict: Update of a record changed since it was read.
	ErrConflict = errors.New("release record changed since it was read")
	// ErrTooLarge: the encoded record does not fit in a Secret.
	ErrTooLarge = errors.New("release record too large")
	// ErrInvalid: the record is malformed (bad name, revision, status or
	// payload).
	ErrInvalid = errors.New("invalid release record")
)

// NotFoundError names what was not found. It matches ErrNotFound.
type NotFoundError struct {
	Namespace  string
	Deployment string
	Revision   int    // 0: the deployment as a whole
	Want       string // what was looked for, e.g. "deployed revision"; empty: any
}

func (e *NotFoundError) Error() string {
	switch {
	case e.Revision > 0:
		return fmt.Sprintf("deployment %s has no revision %d in namespace %s: see `skiff history %s -n %s`", e.Deployment, e.Revision, e.Namespace, e.Deployment, e.Namespace)
	case e.Want != "":
		return fmt.Sprintf("deployment %s has no %s in namespace %s: see `skiff history %s -n %s`", e.Deployment, e.Want, e.Namespace, e.Deployment, e.Namespace)
	}
	return fmt.Sprintf("deployment %s not found in namespace %s: see `skiff list -A`", e.Deployment, e.Namespace)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Driver stores records. Implementations must be safe for concurrent use
// and must return copies: callers may modify what they get.
type Driver interface {
	// Get returns one revision, or a *NotFoundError.
	Get(ctx context.Context, namespace, deployment string, revision int) (*Record, error)
	// List returns every stored revision of a deployment, oldest first;
	// none is not an error.
	List(ctx context.Context, namespace, deployment string) ([]*Record, error)
	// ListAll returns every record in namespace ("" means all namespaces),
	// sorted by namespace, deployment and revision.
	ListAll(ctx context.Context, namespace string) ([]*Record, error)
	// Create stores a new revision (ErrExists if it is already stored).
	Create(ctx context.Context, r *Record) error
	// Update replaces a stored revision: ErrNotFound when absent,
	// ErrConflict when it changed since r was read or created.
	Update(ctx context.Context, r *Record) error
	// Delete removes a revision (ErrNotFound when absent).
	Delete(ctx context.Context, namespace, deployment string, revision int) error
}

// Validate checks the fields every stored record needs.
func (r *Record) Validate() error {
	if errs := validation.IsDNS1123Label(r.Deployment); len(errs) > 0 {
		return fmt.Errorf("%w: deployment name %q: %s", ErrInvalid, r.Deployment, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(r.Namespace); len(errs) > 0 {
		return fmt.Errorf("%w: namespace %q: %s", ErrInvalid, r.Namespace, strings.Join(errs, "; "))
	}
	if r.Revision < 1 {
		return fmt.Errorf("%w: %s: revision must be 1 or more", ErrInvalid, r)
	}
	if !r.Status.Valid() {
		return fmt.Errorf("%w: %s: unknown status %q", ErrInvalid, r, r.Status)
	}
	return nil
}

// sortRecords orders by namespace, deployment, revision.
func sortRecords(rs []*Record) {
	slices.SortFunc(rs, func(a, b *Record) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		if c := strings.Compare(a.Deployment, b.Deployment); c != 0 {
			return c
		}
		return a.Revision - b.Revision
	})
}
