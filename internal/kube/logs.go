package kube

import (
	"log/slog"

	"k8s.io/klog/v2"
)

// SetLogger sends client-go's process-wide logging (klog) to l instead
// of straight to stderr. klog's informational messages, such as the
// client-side throttling note "Waited before sending request", and its
// warnings arrive at slog's Info level or below (V(n) is Info-n), so
// they show only when l's level lets them (skiff -v); errors stay
// errors.
func SetLogger(l *slog.Logger) {
	klog.SetSlogLogger(l)
}
