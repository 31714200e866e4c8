package catalog

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress reports the bytes of a long copy.
type Progress interface {
	Add(n int64)
	Finish()
}

// NewProgress reports progress on w: a progress bar when w is a terminal,
// otherwise a plain line at every 10% (every 256 MiB when total is not
// known, total <= 0) and one at the end. A nil w reports nothing.
func NewProgress(w io.Writer, desc string, total int64) Progress {
	if w == nil {
		return nopProgress{}
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
		)
		return &barProgress{bar: bar}
	}
	return &lineProgress{w: w, desc: desc, total: total, start: time.Now()}
}

type nopProgress struct{}

func (nopProgress) Add(int64) {}
func (nopProgress) Finish()   {}

type barProgress struct{ bar *progressbar.ProgressBar }

func (b *barProgress) Add(n int64) { _ = b.bar.Add64(n) }
func (b *barProgress) Finish()     { _ = b.bar.Finish() }

// lineProgress writes plain lines, for logs and pipes.
type lineProgress struct {
	mu       sync.Mutex
	w        io.Writer
	desc     string
	total    int64
	done     int64
	lastStep int64
	start    time.Time
	finished bool
}

const unknownTotalStep = 256 << 20

func (p *lineProgress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.total > 0 {
		step := p.done * 10 / p.total
		if step > p.lastStep && step < 10 {
			p.lastStep = step
			fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.desc, step*10, HumanBytes(p.done), HumanBytes(p.total))
		}
		return
	}
	if step := p.done / unknownTotalStep; step > p.lastStep {
		p.lastStep = step
		fmt.Fprintf(p.w, "%s: %s\n", p.desc, HumanBytes(p.done))
	}
}

func (p *lineProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	fmt.Fprintf(p.w, "%s: done, %s in %s\n", p.desc, HumanBytes(p.done), time.Since(p.start).Round(time.Millisecond))
}

// HumanBytes writes n as 512 B, 1.1 MiB or 4.30 GiB.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progressWriter counts what passes through it into a Progress.
type progressWriter struct{ p Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.Add(int64(len(b)))
	return len(b), nil
}
