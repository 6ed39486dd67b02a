package release

import (
	"context"
	"fmt"
	"strconv"
	"sync"
)

// Memory is a Driver that keeps records in memory, for tests and dry runs.
type Memory struct {
	mu      sync.Mutex
	records map[memKey]*Record
	seq     int
}

type memKey struct {
	namespace, deployment string
	revision              int
}

// NewMemory returns an empty in-memory driver.
func NewMemory() *Memory { return &Memory{records: map[memKey]*Record{}} }

func keyOf(r *Record) memKey { return memKey{r.Namespace, r.Deployment, r.Revision} }

// Get implements Driver.
func (m *Memory) Get(_ context.Context, namespace, deployment string, revision int) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[memKey{namespace, deployment, revision}]
	if !ok {
		return nil, &NotFoundError{Namespace: namespace, Deployment: deployment, Revision: revision}
	}
	return r.Clone(), nil
}

// List implements Driver.
func (m *Memory) List(_ context.Context, namespace, deployment string) ([]*Record, error) {
	return m.list(func(r *Record) bool { return r.Namespace == namespace && r.Deployment == deployment }), nil
}

// ListAll implements Driver.
func (m *Memory) ListAll(_ context.Context, namespace string) ([]*Record, error) {
	return m.list(func(r *Record) bool { return namespace == "" || r.Namespace == namespace }), nil
}

func (m *Memory) list(keep func(*Record) bool) []*Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Record
	for _, r := range m.records {
		if keep(r) {
			out = append(out, r.Clone())
		}
	}
	sortRecords(out)
	return out
}

// Create implements Driver.
func (m *Memory) Create(_ context.Context, r *Record) error {
	if err := r.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := keyOf(r)
	if _, ok := m.records[k]; ok {
		return fmt.Errorf("%s: %w", r, ErrExists)
	}
	m.store(k, r)
	return nil
}

// Update implements Driver.
func (m *Memory) Update(_ context.Context, r *Record) error {
	if err := r.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := keyOf(r)
	cur, ok := m.records[k]
	if !ok {
		return &NotFoundError{Namespace: r.Namespace, Deployment: r.Deployment, Revision: r.Revision}
	}
	if r.version != "" && r.version != cur.version {
		return fmt.Errorf("%s: %w: another skiff operation changed it; retry", r, ErrConflict)
	}
	m.store(k, r)
	return nil
}

// store saves a copy of r under a new version and tells r that version.
// m.mu must be held.
func (m *Memory) store(k memKey, r *Record) {
	m.seq++
	r.version = strconv.Itoa(m.seq)
	m.records[k] = r.Clone()
}

// Delete implements Driver.
func (m *Memory) Delete(_ context.Context, namespace, deployment string, revision int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{namespace, deployment, revision}
	if _, ok := m.records[k]; !ok {
		return &NotFoundError{Namespace: namespace, Deployment: deployment, Revision: revision}
	}
	delete(m.records, k)
	return nil
}
