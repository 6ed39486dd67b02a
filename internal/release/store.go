package release

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// StoreOptions configures a Store.
type StoreOptions struct {
	// MaxHistory is the number of revisions kept per deployment; older
	// ones are deleted by Create. Zero means unlimited. The latest
	// deployed revision is never deleted.
	MaxHistory int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Store adds history rules on top of a Driver.
type Store struct {
	driver     Driver
	maxHistory int
	now        func() time.Time
}

// NewStore returns a Store over d.
func NewStore(d Driver, opts StoreOptions) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{driver: d, maxHistory: opts.MaxHistory, now: opts.Now}
}

// Get returns one revision.
func (s *Store) Get(ctx context.Context, namespace, deployment string, revision int) (*Record, error) {
	return s.driver.Get(ctx, namespace, deployment, revision)
}

// History returns every stored revision of a deployment, oldest first, or
// a *NotFoundError when there is none.
func (s *Store) History(ctx context.Context, namespace, deployment string) ([]*Record, error) {
	rs, err := s.driver.List(ctx, namespace, deployment)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, &NotFoundError{Namespace: namespace, Deployment: deployment}
	}
	return rs, nil
}

// Latest returns the newest revision, whatever its status.
func (s *Store) Latest(ctx context.Context, namespace, deployment string) (*Record, error) {
	rs, err := s.History(ctx, namespace, deployment)
	if err != nil {
		return nil, err
	}
	return rs[len(rs)-1], nil
}

// Deployed returns the newest revision with status deployed.
func (s *Store) Deployed(ctx context.Context, namespace, deployment string) (*Record, error) {
	rs, err := s.History(ctx, namespace, deployment)
	if err != nil {
		return nil, err
	}
	if r := lastDeployed(rs); r != nil {
		return r, nil
	}
	return nil, &NotFoundError{Namespace: namespace, Deployment: deployment, Want: "deployed revision"}
}

func lastDeployed(rs []*Record) *Record {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Status == StatusDeployed {
			return rs[i]
		}
	}
	return nil
}

// NextRevision returns the revision number the next record of the
// deployment gets: 1 for a new deployment.
func (s *Store) NextRevision(ctx context.Context, namespace, deployment string) (int, error) {
	rs, err := s.driver.List(ctx, namespace, deployment)
	if err != nil {
		return 0, err
	}
	if len(rs) == 0 {
		return 1, nil
	}
	return rs[len(rs)-1].Revision + 1, nil
}

// Create stores r as a new revision. A zero r.Revision becomes the next
// revision; zero Created and Updated become now. Then, with MaxHistory
// set, the oldest revisions beyond it are deleted, except r and the
// newest deployed one. A pruning failure is returned after r was stored.
func (s *Store) Create(ctx context.Context, r *Record) error {
	if r.Revision == 0 {
		n, err := s.NextRevision(ctx, r.Namespace, r.Deployment)
		if err != nil {
			return err
		}
		r.Revision = n
	}
	now := s.now().UTC()
	if r.Created.IsZero() {
		r.Created = now
	}
	if r.Updated.IsZero() {
		r.Updated = now
	}
	if err := s.driver.Create(ctx, r); err != nil {
		return err
	}
	if err := s.prune(ctx, r); err != nil {
		return fmt.Errorf("%s stored, but pruning old revisions failed: %w", r, err)
	}
	return nil
}

func (s *Store) prune(ctx context.Context, keep *Record) error {
	if s.maxHistory <= 0 {
		return nil
	}
	rs, err := s.driver.List(ctx, keep.Namespace, keep.Deployment)
	if err != nil {
		return err
	}
	excess := len(rs) - s.maxHistory
	deployed := lastDeployed(rs)
	var errs []error
	for _, r := range rs {
		if excess <= 0 {
			break
		}
		if r.Revision == keep.Revision || (deployed != nil && r.Revision == deployed.Revision) {
			continue
		}
		if err := s.driver.Delete(ctx, r.Namespace, r.Deployment, r.Revision); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		excess--
	}
	return errors.Join(errs...)
}

// Update stores changes to an existing revision (status, description,
// ...) and sets Updated to now. It fails with ErrConflict when the record
// changed since r was read.
func (s *Store) Update(ctx context.Context, r *Record) error {
	r.Updated = s.now().UTC()
	return s.driver.Update(ctx, r)
}

// Delete removes one revision.
func (s *Store) Delete(ctx context.Context, namespace, deployment string, revision int) error {
	return s.driver.Delete(ctx, namespace, deployment, revision)
}

// Purge removes every revision of a deployment (uninstall without keeping
// history). A deployment with no records is a *NotFoundError.
func (s *Store) Purge(ctx context.Context, namespace, deployment string) error {
	rs, err := s.History(ctx, namespace, deployment)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rs {
		if err := s.driver.Delete(ctx, namespace, deployment, r.Revision); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Deployments returns the latest revision of every deployment in
// namespace ("" means all namespaces), sorted by namespace and name.
func (s *Store) Deployments(ctx context.Context, namespace string) ([]*Record, error) {
	rs, err := s.driver.ListAll(ctx, namespace)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for i, r := range rs { // sorted by namespace, deployment, revision
		if i+1 == len(rs) || rs[i+1].Key() != r.Key() {
			out = append(out, r)
		}
	}
	return out, nil
}
