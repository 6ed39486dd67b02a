package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
)

// WaitOptions configures Wait.
type WaitOptions struct {
	// Timeout bounds the wait; zero means DefaultTimeout.
	Timeout time.Duration
	// Interval is the polling period; zero means one second.
	Interval time.Duration
	// OnStatus, when set, is called whenever an object's status or message
	// changes. status is a kstatus status: InProgress, Current, Failed,
	// Terminating, NotFound or Unknown.
	OnStatus func(ref ObjectRef, status, message string)
}

// ObjectStatus is the kstatus status of one object.
type ObjectStatus struct {
	Ref     ObjectRef
	Status  string
	Message string
	// Warnings are the latest Warning events of the object and of what
	// it owns down to its pods ("Pod web-7d9f: FailedScheduling: 0/3
	// nodes are available: ..."); filled in when a wait times out.
	Warnings []string
}

// NotReadyError reports the objects that were not ready when Wait gave
// up. It matches ErrNotReady.
type NotReadyError struct {
	Timeout  time.Duration
	Total    int
	NotReady []ObjectStatus
}

func (e *NotReadyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d objects not ready after %s:", len(e.NotReady), e.Total, e.Timeout)
	for _, s := range e.NotReady {
		fmt.Fprintf(&b, "\n  %s: %s", s.Ref, s.Status)
		if s.Message != "" {
			fmt.Fprintf(&b, ": %s", s.Message)
		}
		for _, w := range s.Warnings {
			fmt.Fprintf(&b, "\n    warning: %s", w)
		}
	}
	if len(e.NotReady) > 0 {
		r := e.NotReady[0].Ref
		for _, s := range e.NotReady {
			if s.Status != string(status.NotFoundStatus) {
				r = s.Ref // describe something that exists
				break
			}
		}
		fmt.Fprintf(&b, "\ncheck `kubectl describe %s%s`", r.kubectlName(), nsFlag(r))
		if r.Namespace != "" {
			fmt.Fprintf(&b, " and `kubectl get events -n %s`", r.Namespace)
		}
		b.WriteString(" to see why, or raise --timeout if they are just slow")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotReady) true.
func (e *NotReadyError) Is(target error) bool { return target == ErrNotReady }

// Wait polls refs until every one is Current in kstatus terms (Deployments
// available, Jobs complete, custom resources with a Ready condition
// ready, ...). When the timeout passes first it returns a *NotReadyError.
func (c *Client) Wait(ctx context.Context, refs []ObjectRef, opts WaitOptions) error {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()

	last := make(map[ObjectRef]ObjectStatus, len(refs))
	pending := refs
	for {
		var still []ObjectRef
		for _, ref := range pending {
			s, readErr := c.status(wctx, ref)
			if _, seen := last[ref]; readErr && (seen || wctx.Err() != nil) {
				// keep the last status read: a failed read (often the
				// timeout itself) says nothing about the object
				still = append(still, ref)
				continue
			}
			if prev, ok := last[ref]; !ok || prev.Status != s.Status || prev.Message != s.Message {
				last[ref] = s
				if opts.OnStatus != nil {
					opts.OnStatus(ref, s.Status, s.Message)
				}
			}
			if s.Status != string(status.CurrentStatus) {
				still = append(still, ref)
			}
		}
		if len(still) == 0 {
			return nil
		}
		pending = still
		select {
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("waiting for readiness: %w", err)
			}
			e := &NotReadyError{Timeout: opts.Timeout, Total: len(refs)}
			for _, ref := range pending {
				s, ok := last[ref]
				if !ok {
					s = ObjectStatus{Ref: ref, Status: string(status.UnknownStatus), Message: "not read yet"}
				}
				e.NotReady = append(e.NotReady, s)
			}
			c.explain(ctx, e.NotReady)
			return e
		case <-tick.C:
		}
	}
}

// Status reads ref and computes its kstatus status.
func (c *Client) Status(ctx context.Context, ref ObjectRef) ObjectStatus {
	s, _ := c.status(ctx, ref)
	return s
}

// status reads ref and computes its status; readErr is true when reading
// failed for another reason than the object being absent.
func (c *Client) status(ctx context.Context, ref ObjectRef) (s ObjectStatus, readErr bool) {
	s = ObjectStatus{Ref: ref}
	obj, err := c.Get(ctx, ref)
	switch {
	case errors.Is(err, ErrNotFound):
		s.Status, s.Message = string(status.NotFoundStatus), "object does not exist"
	case err != nil:
		s.Status, s.Message = string(status.UnknownStatus), err.Error()
		return s, true
	default:
		res, err := status.Compute(obj)
		if err != nil {
			s.Status, s.Message = string(status.UnknownStatus), err.Error()
		} else {
			s.Status, s.Message = string(res.Status), res.Message
		}
	}
	return s, false
}
