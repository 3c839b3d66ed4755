package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// bootProgress prints a start's phases on a terminal as they end, each on
// a line with how long it took, and what still runs on a last line it
// rewrites, so a slow start says where it is.
type bootProgress struct {
	w       io.Writer
	seen    bool            // a Starting status came: the phases are this start's
	printed map[string]bool // phases already printed
	status  string          // the running line on screen, if any
}

func newBootProgress(w io.Writer) *bootProgress {
	return &bootProgress{w: w, printed: map[string]bool{}}
}

// update shows st's phases. Statuses from before the start (a restart's
// stop, the previous boot's phases) are skipped.
func (p *bootProgress) update(st hostapi.Status) {
	if st.State == hostapi.Starting {
		p.seen = true
	}
	if !p.seen {
		return
	}
	var ended, running []hostapi.BootPhase
	for _, ph := range st.Boot {
		switch {
		case ph.Running:
			running = append(running, ph)
		case !p.printed[ph.Name]:
			ended = append(ended, ph)
		}
	}
	sort.SliceStable(ended, func(i, j int) bool { return ended[i].EndMS < ended[j].EndMS })
	p.clear()
	for _, ph := range ended {
		p.printed[ph.Name] = true
		fmt.Fprintf(p.w, "  %-28s %5.2f s\n", hostapi.PhaseLabel(ph.Name), ph.Took().Seconds())
	}
	if st.State == hostapi.Starting && len(running) > 0 {
		var names []string
		for _, ph := range running {
			names = append(names, hostapi.PhaseLabel(ph.Name))
		}
		p.status = "  … " + strings.Join(names, ", ")
		io.WriteString(p.w, p.status)
	}
}

// clear erases the running line.
func (p *bootProgress) clear() {
	if p.status != "" {
		io.WriteString(p.w, "\r\033[K")
		p.status = ""
	}
}

// done shows the final status's phases and leaves the cursor on a fresh line.
func (p *bootProgress) done(st hostapi.Status) {
	if st.State == hostapi.Running {
		p.seen = true
	}
	p.update(st)
	p.clear()
}
