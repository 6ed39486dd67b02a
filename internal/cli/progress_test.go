package cli

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/oci"
)

// TestMeterNeverGoesBack: the byte total grows as blobs start, which
// would pull done/total back; the fill holds instead, and reaches the
// end when everything is done.
func TestMeterNeverGoesBack(t *testing.T) {
	events := []oci.Event{
		{Kind: oci.BlobStart, Size: 100},
		{Kind: oci.BlobDone, Size: 100},  // 100%, of what is known
		{Kind: oci.BlobStart, Size: 900}, // 10% by bytes: held
		{Kind: oci.BlobSkipped, Size: 500},
		{Kind: oci.BlobDone, Size: 900},
		{Kind: oci.BlobMounted, Size: 0},
		{Kind: oci.ImageDone, Size: 1500},
	}
	var m meter
	last := int64(0)
	for i, e := range events {
		f := m.event(e)
		if f < last {
			t.Fatalf("event %d (%v) took the fill back from %d to %d", i, e.Kind, last, f)
		}
		last = f
	}
	if last != 1000 || m.done != 1500 || m.total != 1500 {
		t.Fatalf("end: fill %d, %d of %d bytes; want 1000, 1500 of 1500", last, m.done, m.total)
	}
}

// TestStageMessagesWithBars: stage messages are shown with a bar (above
// it) and without one (a line each); --progress none shows none.
// Warnings always show, above the bar while there is one.
func TestStageMessagesWithBars(t *testing.T) {
	for _, mode := range []string{"bars", "plain", "none"} {
		var errOut bytes.Buffer
		a := &app{progress: mode, streams: Streams{Err: &errOut}}
		bp := a.newBlobProgress("pull")
		bp.event(oci.Event{Kind: oci.BlobStart, Size: 10})
		bp.message("fetching chart web")
		bp.event(oci.Event{Kind: oci.BlobDone, Size: 10})
		bp.message("signing with key abc")
		a.warn("the disk is almost full")
		bp.done()
		got := errOut.String()
		if !strings.Contains(got, "skiff: warning: the disk is almost full\n") {
			t.Errorf("--progress %s: output %q lacks the warning, whole on its line", mode, got)
		}
		for _, msg := range []string{"fetching chart web", "signing with key abc"} {
			if strings.Contains(got, msg) != (mode != "none") {
				t.Errorf("--progress %s: output %q; want %q shown: %v", mode, got, msg, mode != "none")
			}
		}
	}
}

// TestLibraryChatterNeedsVerbose: what libraries log process-wide (Helm's
// slog calls) shows with -v only; their warnings show always.
func TestLibraryChatterNeedsVerbose(t *testing.T) {
	prev := slog.Default()
	t.Cleanup(func() {
		slog.SetDefault(prev)
		kube.SetLogger(prev)
	})
	for _, verbose := range []int{0, 1} {
		var errOut bytes.Buffer
		a := &app{verbose: verbose, streams: Streams{Err: &errOut}}
		a.setupLog()
		slog.Info("Helm chatter: loading chart")
		slog.Warn("resource exists on cluster but not in original release")
		got := errOut.String()
		if strings.Contains(got, "Helm chatter") != (verbose > 0) {
			t.Errorf("-v=%d: stderr %q; want the chatter shown: %v", verbose, got, verbose > 0)
		}
		if !strings.Contains(got, "resource exists on cluster") {
			t.Errorf("-v=%d: stderr %q lacks the warning", verbose, got)
		}
	}
}
