package kube

import (
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Sentinel errors; test with errors.Is. The API server's own error stays
// in the chain too, so apierrors.IsNotFound and friends also work.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the object changed since it was read (resourceVersion
	// mismatch); read it again and retry.
	ErrConflict = errors.New("conflict")
	// ErrExists: the object to create already exists.
	ErrExists = errors.New("already exists")
	// ErrLocked: another operation holds the deployment lock.
	ErrLocked = errors.New("locked")
	// ErrNotReady: Wait gave up before every object became ready.
	ErrNotReady = errors.New("not ready")
)

// apiError keeps the API server's message and adds a sentinel to the chain.
type apiError struct {
	sentinel error
	err      error
}

func (e *apiError) Error() string   { return e.err.Error() }
func (e *apiError) Unwrap() []error { return []error{e.sentinel, e.err} }

// classify adds ErrNotFound, ErrConflict or ErrExists to API errors of
// those kinds and returns others unchanged.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return &apiError{ErrNotFound, err}
	case apierrors.IsConflict(err):
		return &apiError{ErrConflict, err}
	case apierrors.IsAlreadyExists(err):
		return &apiError{ErrExists, err}
	}
	return err
}
