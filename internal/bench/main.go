// Command bench measures Berth side by side with the engines installed next
// to it (Debian's dockerd and podman), in one run, and writes the medians to
// docs/benchmarks.md. It is `make bench`; it measures, it does not assert.
//
//	go run ./internal/bench -out docs/benchmarks.md [-n 20] [-only REGEXP]
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Scenario is one measured figure. Run returns the samples for one engine;
// the table shows their median. Scenarios register themselves from init, one
// file per area (engine, network, build, vm, desktop).
type Scenario struct {
	Section string // heading in docs/benchmarks.md, e.g. "Engine"
	Name    string // what is measured, e.g. "docker run --rm busybox true"
	Unit    string // "ms" or "MB"
	Target  string // the target, e.g. "≤ 100 ms"
	// Engines limits the scenario to these engine names (nil: all).
	Engines []string
	Run     func(b *Bench, e *Engine) ([]float64, error)
}

var scenarios []Scenario

func register(s Scenario) { scenarios = append(scenarios, s) }

// Bench carries the run's settings and shared fixtures.
type Bench struct {
	N        int // samples per scenario
	T        *benchT
	Registry string // host:port of the shared registry
}

func main() {
	out := flag.String("out", "docs/benchmarks.md", "markdown file to update")
	n := flag.Int("n", 20, "samples per scenario")
	only := flag.String("only", "", "run only scenarios whose section/name matches this regexp")
	flag.StringVar(&beforeBin, "before", "", "directory of an earlier build's binaries: its berth-agent runs side by side as berth@before")
	flag.Parse()
	var filter *regexp.Regexp
	if *only != "" {
		filter = regexp.MustCompile(*only)
	}
	t := newBenchT()
	defer t.cleanup()
	b := &Bench{N: *n, T: t}
	engines := startEngines(b)
	if len(engines) == 0 {
		fatal("no engine could be started")
	}

	results := map[string]map[string]string{} // scenario key → engine → cell
	var ran []Scenario
	for _, s := range scenarios {
		key := s.Section + "/" + s.Name
		if filter != nil && !filter.MatchString(key) {
			continue
		}
		ran = append(ran, s)
		results[key] = map[string]string{}
		for _, e := range engines {
			if s.Engines != nil && !contains(s.Engines, e.Name) {
				results[key][e.Name] = "–"
				continue
			}
			fmt.Fprintf(os.Stderr, "%-8s %s …", e.Name, key)
			samples, err := s.Run(b, e)
			if err != nil {
				fmt.Fprintf(os.Stderr, " error: %v\n", err)
				results[key][e.Name] = "error"
				continue
			}
			med := median(samples)
			fmt.Fprintf(os.Stderr, " %s %s (n=%d)\n", format(med), s.Unit, len(samples))
			results[key][e.Name] = format(med) + " " + s.Unit
		}
	}
	if len(ran) == 0 {
		fatal("no scenario matched")
	}
	if err := writeMarkdown(*out, ran, engines, results, *n); err != nil {
		fatal(err.Error())
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func format(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, "bench:", msg)
	os.Exit(1)
}

// writeMarkdown replaces each measured section of out (between
// "<!-- bench:Section -->" markers) with a fresh table, leaving the rest of
// the file, including other sections, as it was.
func writeMarkdown(out string, ran []Scenario, engines []*Engine, results map[string]map[string]string, n int) error {
	old, _ := os.ReadFile(out)
	doc := string(old)
	if doc == "" {
		doc = "# Benchmarks\n\nMedians; all engines measured side by side in one run of `make bench` on the same machine.\n"
	}
	var sections []string
	bySection := map[string][]Scenario{}
	for _, s := range ran {
		if bySection[s.Section] == nil {
			sections = append(sections, s.Section)
		}
		bySection[s.Section] = append(bySection[s.Section], s)
	}
	host, _ := os.Hostname()
	for _, sec := range sections {
		var tb strings.Builder
		fmt.Fprintf(&tb, "<!-- bench:%s -->\n## %s\n\n", sec, sec)
		fmt.Fprintf(&tb, "Run %s on %s, median of %d: `make bench` (`go run ./internal/bench -only '%s'`).\n\n",
			time.Now().UTC().Format("2006-01-02 15:04 MST"), host, n, regexp.QuoteMeta(sec)+"/")
		tb.WriteString("| scenario | target |")
		for _, e := range engines {
			fmt.Fprintf(&tb, " %s |", e.Label())
		}
		tb.WriteString("\n|---|---|")
		for range engines {
			tb.WriteString("---|")
		}
		tb.WriteString("\n")
		for _, s := range bySection[sec] {
			fmt.Fprintf(&tb, "| %s | %s |", s.Name, s.Target)
			for _, e := range engines {
				fmt.Fprintf(&tb, " %s |", results[s.Section+"/"+s.Name][e.Name])
			}
			tb.WriteString("\n")
		}
		fmt.Fprintf(&tb, "<!-- /bench:%s -->\n", sec)
		start := strings.Index(doc, "<!-- bench:"+sec+" -->")
		endMarker := "<!-- /bench:" + sec + " -->\n"
		end := strings.Index(doc, endMarker)
		if start >= 0 && end > start {
			doc = doc[:start] + tb.String() + doc[end+len(endMarker):]
		} else {
			doc = strings.TrimRight(doc, "\n") + "\n\n" + tb.String()
		}
	}
	return os.WriteFile(out, []byte(doc), 0o644)
}
