package cli

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/internal/oci"
)

// blobProgress renders oci transfer events: one bar on a terminal, with
// stage messages printed above it; a line per finished image and per
// message otherwise. It is safe for concurrent use.
type blobProgress struct {
	a       *app
	mu      sync.Mutex
	w       io.Writer
	verb    string
	p       *mpb.Progress
	bar     *mpb.Bar
	m       meter
	plain   bool
	none    bool
	images  int
	started time.Time
	// shownDone and shownTotal mirror m for the decorators, which run on mpb's
	// goroutine.
	shownDone, shownTotal atomic.Int64
}

// meter turns transfer events into a fill (in permille) that never goes
// back. The byte total is only known as blobs start (a manifest names
// its layers once fetched), so done/total can fall when a blob starts;
// the fill then holds until the transfer catches up.
type meter struct {
	done, total int64
	fill        int64 // permille, never decreasing
}

// event accounts for e and returns the fill.
func (m *meter) event(e oci.Event) int64 {
	switch e.Kind {
	case oci.BlobStart:
		m.total += e.Size
	case oci.BlobDone:
		m.done += e.Size
	case oci.BlobSkipped, oci.BlobMounted:
		m.total += e.Size
		m.done += e.Size
	}
	if m.done > m.total {
		m.total = m.done
	}
	if m.total > 0 {
		if f := m.done * 1000 / m.total; f > m.fill {
			m.fill = f
		}
	}
	return m.fill
}

func (a *app) newBlobProgress(verb string) *blobProgress {
	bp := &blobProgress{a: a, w: a.streams.Err, verb: verb, started: time.Now()}
	mode := a.progress
	if mode == "auto" {
		mode = "plain"
		if isTerminal(a.streams.Err) {
			mode = "bars"
		}
	}
	switch mode {
	case "none":
		bp.none = true
	case "bars":
		bp.p = mpb.New(mpb.WithOutput(a.streams.Err), mpb.WithAutoRefresh(), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
		// Created empty and given its scale without completing: a bar
		// whose fill reaches its total completes, and the stage messages
		// written after that (the SBOMs, signing, writing) would be lost.
		bp.bar = bp.p.AddBar(0,
			mpb.PrependDecorators(decor.Name(verb+" ", decor.WC{W: len(verb) + 1}), decor.Any(bp.counters)),
			mpb.AppendDecorators(decor.Any(bp.speed), decor.Name(" "), decor.Percentage()),
		)
		bp.bar.SetTotal(1000, false)
		a.bar.Store(bp)
	default:
		bp.plain = true
	}
	return bp
}

// counters shows the bytes done and known so far.
func (bp *blobProgress) counters(decor.Statistics) string {
	return bytesize.Format(bp.shownDone.Load()) + " / " + bytesize.Format(bp.shownTotal.Load())
}

// speed shows the average rate since the start.
func (bp *blobProgress) speed(decor.Statistics) string {
	s := time.Since(bp.started).Seconds()
	if s <= 0 {
		return ""
	}
	return bytesize.Format(int64(float64(bp.shownDone.Load())/s)) + "/s"
}

// event consumes one transfer event.
func (bp *blobProgress) event(e oci.Event) {
	if bp == nil || bp.none {
		return
	}
	bp.mu.Lock()
	defer bp.mu.Unlock()
	fill := bp.m.event(e)
	if bp.bar != nil {
		bp.shownDone.Store(bp.m.done)
		bp.shownTotal.Store(bp.m.total)
		bp.bar.SetCurrent(fill)
	}
	if e.Kind == oci.ImageDone {
		bp.images++
		if bp.plain {
			fmt.Fprintf(bp.w, "%s %s\n", bp.verb, e.Image)
		}
	}
}

// message shows a stage message: above the bar on a terminal (writing
// past the bar would garble it), as a line otherwise.
func (bp *blobProgress) message(msg string) {
	if bp == nil || bp.none || msg == "" {
		return
	}
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if bp.p != nil {
		fmt.Fprintln(bp.p, msg)
		return
	}
	fmt.Fprintln(bp.w, msg)
}

// output shows a line that must be seen whatever --progress says (a
// command's output): above the bar on a terminal, else as it is.
func (bp *blobProgress) output(line string) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if bp.p != nil {
		fmt.Fprintln(bp.p, line)
		return
	}
	fmt.Fprintln(bp.w, line)
}

// done finishes the display.
func (bp *blobProgress) done() {
	if bp == nil || bp.p == nil {
		return
	}
	bp.a.bar.CompareAndSwap(bp, nil)
	bp.bar.SetTotal(-1, true) // complete where the fill is
	bp.p.Wait()
}
