package doctor

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	gvkNode  = schema.GroupVersionKind{Version: "v1", Kind: "Node"}
	gvkLease = schema.GroupVersionKind{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}
)

// nodeLeaseNamespace holds one Lease per node, renewed by its kubelet.
const nodeLeaseNamespace = "kube-node-lease"

const clockFix = "run NTP (chrony or systemd-timesyncd) against a time source inside the air gap on every node and this host"

// checkClock compares this host's clock with the API server's (the Date
// header of a request) and with every node's (the renewTime of its Lease
// and the heartbeat of its Ready condition, which the kubelet writes
// with its own clock).
func checkClock(ctx context.Context, e *Env) []Result {
	var out []Result
	server, rtt, err := e.Kube.ServerTime(ctx)
	if err != nil {
		out = append(out, Result{Severity: Warn, Subject: "API server", Message: err.Error()})
	} else {
		// The Date header has one-second resolution and was written
		// somewhere within the round trip.
		local := e.Now().Add(-rtt / 2)
		skew := server.Sub(local.Truncate(time.Second))
		out = append(out, grade(e, "API server", skew, rtt/2+time.Second))
	}
	leases, err := e.Kube.List(ctx, gvkLease, nodeLeaseNamespace, "")
	if err != nil {
		out = append(out, Result{Severity: Warn, Subject: "node leases", Message: err.Error()})
	}
	renewed := map[string]time.Time{}
	durations := map[string]time.Duration{}
	for _, l := range leases {
		s, _, _ := unstructured.NestedString(l.Object, "spec", "renewTime")
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			renewed[l.GetName()] = t
		}
		if d, ok, _ := unstructured.NestedInt64(l.Object, "spec", "leaseDurationSeconds"); ok {
			durations[l.GetName()] = time.Duration(d) * time.Second
		}
	}
	nodes, err := e.Kube.List(ctx, gvkNode, "", "")
	if err != nil {
		return append(out, Result{Severity: Warn, Subject: "nodes", Message: err.Error()})
	}
	now := e.Now()
	for _, n := range nodes {
		subject := "node " + n.GetName()
		// A kubelet renews its lease every quarter of the lease duration
		// (40 s by default).
		period := 40 * time.Second
		if d := durations[n.GetName()]; d > 0 {
			period = d
		}
		when, from := renewed[n.GetName()], "lease renewal"
		if when.IsZero() {
			when, from = readyHeartbeat(&n), "Ready heartbeat"
			period = 5 * time.Minute
		}
		if when.IsZero() {
			out = append(out, Result{Severity: Warn, Subject: subject, Message: "no node lease and no Ready heartbeat: cannot compare its clock",
				Fix: "check that the node's kubelet is running"})
			continue
		}
		age := now.Sub(when)
		switch {
		case age < -e.MaxSkew:
			r := grade(e, subject, -age, 0)
			r.Message = fmt.Sprintf("last %s is %s in the future: the node's clock is ahead of this host's", from, (-age).Round(time.Second))
			out = append(out, r)
		case age > period+e.MaxSkew:
			out = append(out, Result{Severity: Warn, Subject: subject,
				Message: fmt.Sprintf("last %s was %s ago: the kubelet is down or the node's clock is behind this host's", from, age.Round(time.Second)),
				Fix:     "check the kubelet on the node (systemctl status kubelet), then its clock; " + clockFix})
		default:
			out = append(out, Result{Severity: OK, Subject: subject, Message: fmt.Sprintf("last %s %s ago", from, age.Round(time.Second))})
		}
	}
	return out
}

// grade judges a clock difference measured with the given uncertainty.
func grade(e *Env, subject string, skew, uncertainty time.Duration) Result {
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	abs -= uncertainty
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	msg := fmt.Sprintf("clock is %s %s this host's", skew.Abs().Round(time.Millisecond), dir)
	switch {
	case abs > failSkew:
		return Result{Severity: Fail, Subject: subject, Message: msg + ": tokens and certificates stop validating", Fix: clockFix}
	case abs > e.MaxSkew:
		return Result{Severity: Warn, Subject: subject, Message: msg, Fix: clockFix}
	}
	return Result{Severity: OK, Subject: subject, Message: fmt.Sprintf("clock within %s of this host's", max(e.MaxSkew, uncertainty))}
}

func readyHeartbeat(n *unstructured.Unstructured) time.Time {
	conds, _, _ := unstructured.NestedSlice(n.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Ready" {
			continue
		}
		s, _ := m["lastHeartbeatTime"].(string)
		t, err := time.Parse(time.RFC3339, s)
		if err == nil {
			return t
		}
	}
	return time.Time{}
}
