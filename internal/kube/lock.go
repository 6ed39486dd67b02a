package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LeasePrefix starts the name of the Lease that locks a deployment.
const LeasePrefix = "skiff.lock."

// LockedError says who holds a deployment lock. It matches ErrLocked.
type LockedError struct {
	Namespace string    // of the lock's Lease
	Name      string    // deployment
	Holder    string    // holder identity of the lease
	Since     time.Time // when the holder acquired it
	Expires   time.Time // when the lease expires unless renewed
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("deployment %s is locked by %s since %s: another skiff operation is running; wait, or if it died, retry after the lock expires (%s) or remove the lock: kubectl -n %s delete lease %s%s",
		e.Name, e.Holder, e.Since.Format(time.RFC3339), e.Expires.Format(time.RFC3339), e.Namespace, LeasePrefix, e.Name)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock takes the lock on deployment name in namespace (a
// coordination.k8s.io Lease named LeasePrefix+name, created with the
// namespace if needed). The lock is free when the Lease is absent,
// expired (not renewed for ttl) or already held by holder; otherwise Lock
// returns a *LockedError. While held, the lease is renewed every ttl/3
// until unlock is called; unlock releases it and reports whether the lock
// was lost meanwhile (taken over after expiry, or force-unlocked).
func (c *Client) Lock(ctx context.Context, namespace, name, holder string, ttl time.Duration) (unlock func(context.Context) error, err error) {
	if ttl < time.Second {
		ttl = time.Second
	}
	lease, err := c.acquire(ctx, namespace, name, holder, ttl)
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	h := &heldLock{c: c, lease: lease, stop: stop, done: make(chan struct{})}
	go h.renew(rctx, ttl)
	return h.unlock, nil
}

// ForceUnlock deletes the deployment's lock whoever holds it.
func (c *Client) ForceUnlock(ctx context.Context, namespace, name string) error {
	err := c.typed.CoordinationV1().Leases(namespace).Delete(ctx, LeasePrefix+name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing lock of deployment %s: %w", name, classify(err))
	}
	return nil
}

func (c *Client) acquire(ctx context.Context, namespace, name, holder string, ttl time.Duration) (*coordv1.Lease, error) {
	leases := c.typed.CoordinationV1().Leases(namespace)
	now := metav1.NowMicro()
	secs := int32((ttl + time.Second - 1) / time.Second)
	spec := coordv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now}
	lease := &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: LeasePrefix + name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "skiff"}},
		Spec:       spec,
	}
	for attempt := 0; ; attempt++ {
		out, err := leases.Create(ctx, lease, metav1.CreateOptions{FieldManager: DefaultFieldManager})
		if err == nil {
			return out, nil
		}
		if apierrors.IsNotFound(err) && attempt == 0 { // the namespace is missing
			if err := c.EnsureNamespace(ctx, namespace); err != nil {
				return nil, err
			}
			continue
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("locking deployment %s: %w", name, classify(err))
		}
		cur, err := leases.Get(ctx, lease.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && attempt < 3 {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("locking deployment %s: %w", name, classify(err))
		}
		if held := lockedBy(cur, name, holder, now.Time); held != nil {
			return nil, held
		}
		cur.Spec = spec
		out, err = leases.Update(ctx, cur, metav1.UpdateOptions{FieldManager: DefaultFieldManager})
		if apierrors.IsConflict(err) && attempt < 3 {
			continue // someone else moved first: look again
		}
		if err != nil {
			return nil, fmt.Errorf("locking deployment %s: %w", name, classify(err))
		}
		return out, nil
	}
}

// lockedBy returns a *LockedError when another holder holds a live lease.
func lockedBy(l *coordv1.Lease, name, holder string, now time.Time) *LockedError {
	var h string
	if l.Spec.HolderIdentity != nil {
		h = *l.Spec.HolderIdentity
	}
	if h == "" || h == holder {
		return nil
	}
	renewed := l.CreationTimestamp.Time
	if l.Spec.RenewTime != nil {
		renewed = l.Spec.RenewTime.Time
	}
	var ttl time.Duration
	if l.Spec.LeaseDurationSeconds != nil {
		ttl = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	expires := renewed.Add(ttl)
	if now.After(expires) {
		return nil
	}
	since := renewed
	if l.Spec.AcquireTime != nil {
		since = l.Spec.AcquireTime.Time
	}
	return &LockedError{Namespace: l.Namespace, Name: name, Holder: h, Since: since, Expires: expires}
}

// heldLock renews a lease until unlocked.
type heldLock struct {
	c    *Client
	stop context.CancelFunc
	done chan struct{}
	once sync.Once

	mu    sync.Mutex
	lease *coordv1.Lease
	lost  error
}

func (h *heldLock) renew(ctx context.Context, ttl time.Duration) {
	defer close(h.done)
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h.mu.Lock()
		l := h.lease.DeepCopy()
		h.mu.Unlock()
		now := metav1.NowMicro()
		l.Spec.RenewTime = &now
		out, err := h.c.typed.CoordinationV1().Leases(l.Namespace).Update(ctx, l, metav1.UpdateOptions{FieldManager: DefaultFieldManager})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			h.mu.Lock()
			h.lost = fmt.Errorf("lost the lock %s/%s while holding it (it expired and was taken over, or was force-unlocked): %w", l.Namespace, l.Name, ErrLocked)
			h.mu.Unlock()
			return
		}
		if err == nil {
			h.mu.Lock()
			h.lease = out
			h.mu.Unlock()
		}
		// other errors: keep the old lease and retry on the next tick
	}
}

func (h *heldLock) unlock(ctx context.Context) error {
	var err error
	h.once.Do(func() {
		h.stop()
		<-h.done
		h.mu.Lock()
		l, lost := h.lease, h.lost
		h.mu.Unlock()
		if lost != nil {
			err = lost
			return
		}
		uid, rv := l.UID, l.ResourceVersion
		derr := h.c.typed.CoordinationV1().Leases(l.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		})
		switch {
		case derr == nil, apierrors.IsNotFound(derr):
		case apierrors.IsConflict(derr):
			err = fmt.Errorf("releasing lock %s/%s: it was taken over meanwhile: %w", l.Namespace, l.Name, errors.Join(ErrLocked, derr))
		default:
			err = fmt.Errorf("releasing lock %s/%s: %w", l.Namespace, l.Name, classify(derr))
		}
	})
	return err
}
