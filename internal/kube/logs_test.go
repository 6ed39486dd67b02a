package kube_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/klog/v2"

	"github.com/skiffhq/skiff/internal/kube"
)

// TestSetLoggerQuietsChatter: client-go's throttling note, which klog
// prints at its default verbosity, reaches the logger at Info, so it
// shows only with -v; nothing goes to klog's own output.
func TestSetLoggerQuietsChatter(t *testing.T) {
	var direct bytes.Buffer
	klog.LogToStderr(false)
	klog.SetOutput(&direct)
	t.Cleanup(func() {
		klog.ClearLogger()
		klog.LogToStderr(true)
	})
	for _, tc := range []struct {
		level slog.Level
		shown bool
	}{
		{slog.LevelWarn, false}, // skiff's default
		{slog.LevelInfo, true},  // -v
	} {
		var buf bytes.Buffer
		kube.SetLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})))
		klog.Background().Info("Waited before sending request", "delay", "10s")
		klog.Warning("a deprecated API")
		klog.Flush()
		got := buf.String()
		if strings.Contains(got, "Waited before sending request") != tc.shown || strings.Contains(got, "deprecated") != tc.shown {
			t.Errorf("at level %v the logger got %q; want the chatter shown: %v", tc.level, got, tc.shown)
		}
	}
	if direct.Len() > 0 {
		t.Errorf("klog wrote past the logger: %q", direct.String())
	}
}
