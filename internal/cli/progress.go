package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/skiffhq/skiff/internal/oci"
)

// blobProgress renders oci transfer events: one byte bar on a terminal,
// a line per finished image otherwise. It is safe for concurrent use.
type blobProgress struct {
	mu      sync.Mutex
	w       io.Writer
	verb    string
	p       *mpb.Progress
	bar     *mpb.Bar
	total   int64
	plain   bool
	none    bool
	images  int
	started time.Time
}

func (a *app) newBlobProgress(verb string) *blobProgress {
	bp := &blobProgress{w: a.streams.Err, verb: verb, started: time.Now()}
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
		bp.p = mpb.New(mpb.WithOutput(a.streams.Err), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond))
		bp.bar = bp.p.AddBar(0,
			mpb.PrependDecorators(decor.Name(verb+" ", decor.WC{W: len(verb) + 1}), decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")),
			mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f"), decor.Name(" "), decor.Percentage()),
		)
	default:
		bp.plain = true
	}
	return bp
}

// event consumes one transfer event.
func (bp *blobProgress) event(e oci.Event) {
	if bp == nil || bp.none {
		return
	}
	bp.mu.Lock()
	defer bp.mu.Unlock()
	switch e.Kind {
	case oci.BlobStart:
		if bp.bar != nil {
			bp.total += e.Size
			bp.bar.SetTotal(bp.total, false)
		}
	case oci.BlobDone:
		if bp.bar != nil {
			bp.bar.IncrInt64(e.Size)
		}
	case oci.BlobSkipped, oci.BlobMounted:
		if bp.bar != nil {
			bp.total += e.Size
			bp.bar.SetTotal(bp.total, false)
			bp.bar.IncrInt64(e.Size)
		}
	case oci.ImageDone:
		bp.images++
		if bp.plain {
			fmt.Fprintf(bp.w, "%s %s\n", bp.verb, e.Image)
		}
	}
}

// done finishes the display.
func (bp *blobProgress) done() {
	if bp == nil || bp.p == nil {
		return
	}
	bp.bar.SetTotal(bp.total, true)
	bp.p.Wait()
}
