package compat_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// The endpoints dockerd serves beyond the ones its swagger lists.
var undocumented = []string{"POST /grpc", "POST /build/cancel"}

// coveredElsewhere are endpoints the suite does not compare, and why.
var coveredElsewhere = map[string]string{
	"GET /images/{name}/attestations": "added in API 1.55, after the newest Berth speaks (1.52): not served",
	"POST /session":                   "BuildKit's session stream (h2c), driven by buildx in test/engine (TestBuildKit*)",
	"POST /grpc":                      "BuildKit's control API (h2c), driven by buildx in test/engine (TestBuildKit*)",
}

// apiEndpoints lists every Engine API endpoint ("GET /containers/{}/json")
// from the swagger of the API module Berth builds on.
func apiEndpoints() ([]string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/moby/moby/api").Output()
	if err != nil {
		return nil, fmt.Errorf("find the moby API module: %w", err)
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(string(out)), "swagger.yaml"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var eps []string
	inPaths, path := false, ""
	pathLine := regexp.MustCompile(`^  (/\S*):$`)
	methodLine := regexp.MustCompile(`^    (get|post|put|delete|head):$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "paths:":
			inPaths = true
		case inPaths && l != "" && l[0] != ' ':
			inPaths = false
		case inPaths && pathLine.MatchString(l):
			path = pathLine.FindStringSubmatch(l)[1]
		case inPaths && methodLine.MatchString(l):
			eps = append(eps, strings.ToUpper(methodLine.FindStringSubmatch(l)[1])+" "+path)
		}
	}
	return append(eps, undocumented...), sc.Err()
}

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// endpointKey is an endpoint as observations name it.
func endpointKey(ep string) string { return pathParam.ReplaceAllString(ep, "{}") }

type endpointReport struct {
	scenarios   map[string]bool
	observed    int
	settled     int // observations in scenarios that are not pending
	intentional map[string]bool
	pending     map[string]bool
	berthOnly   map[string]bool
	differs     bool
	refusals    map[string]bool // "503 This node is not …": Berth's errors where it agrees
	answers     int             // Berth's answers below 400
}

// writeDoc writes docs/compat.md from the results.
func writeDoc(path string, results []*result) error {
	eps, err := apiEndpoints()
	if err != nil {
		return err
	}
	reports := map[string]*endpointReport{}
	get := func(key string) *endpointReport {
		r := reports[key]
		if r == nil {
			r = &endpointReport{scenarios: map[string]bool{}, intentional: map[string]bool{}, pending: map[string]bool{}, berthOnly: map[string]bool{}, refusals: map[string]bool{}}
			reports[key] = r
		}
		return r
	}
	compared, agree, intentional, pending, only := 0, 0, 0, 0, 0
	used := map[string]bool{}
	for _, res := range results {
		switch {
		case res.sc.berthOnly != "":
			only++
		default:
			compared++
			switch {
			case res.agrees():
				agree++
			case len(res.diffs) > 0 && res.sc.pending != "":
				pending++
			case len(res.diffs) == 0:
				intentional++
			}
		}
		for k := range res.exceptions {
			used[k] = true
		}
		for _, o := range res.berth {
			if o.endpoint == "" {
				continue
			}
			r := get(o.endpoint)
			r.scenarios[res.sc.name] = true
			r.observed++
			if res.sc.pending == "" {
				r.settled++
			}
			if res.sc.berthOnly != "" {
				r.berthOnly[res.sc.berthOnly] = true
			}
			if o.status >= 400 {
				r.refusals[fmt.Sprintf("%d %q", o.status, errMessage(o))] = true
			} else if o.status > 0 {
				r.answers++
			}
		}
		for _, d := range res.intentional {
			get(d.endpoint).intentional[d.reason] = true
		}
		for _, d := range res.diffs {
			if d.endpoint == "" {
				continue // a value: the requests around it carry the verdict
			}
			if res.sc.pending != "" {
				get(d.endpoint).pending[res.sc.pending] = true
			} else {
				get(d.endpoint).differs = true
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Engine API compatibility\n\n")
	fmt.Fprintf(&b, "Generated from the differential suite (`test/compat`) by `make compat-doc`; do not edit by hand.\n")
	fmt.Fprintf(&b, "Each scenario sends the same requests to Berth and to a real dockerd (Debian's docker.io 20.10, API 1.41,\n")
	fmt.Fprintf(&b, "started by the test) and compares status codes, content types, the JSON keys of every answer (recursively,\n")
	fmt.Fprintf(&b, "with the kind of each value), stream framing and what each stream carried, error classes, event sequences\n")
	fmt.Fprintf(&b, "and the values a scenario picks. Requests use API 1.41, the newest dockerd 20.10 speaks; the newer versions\n")
	fmt.Fprintf(&b, "are checked against the documented behaviour, on Berth alone.\n\n")
	fmt.Fprintf(&b, "**Berth and dockerd agree in %d of %d scenarios**", agree, compared)
	fmt.Fprintf(&b, " (after the documented exceptions below); %d differ only in ways recorded as intentional, with the reason", intentional)
	if pending > 0 {
		fmt.Fprintf(&b, "; %d need endpoints other work is adding (pending)", pending)
	}
	fmt.Fprintf(&b, ". %d more scenarios check Berth alone.\n\n", only)

	fmt.Fprintf(&b, "## Endpoints\n\n| Endpoint | Berth | Scenarios |\n|---|---|---|\n")
	seen := map[string]bool{}
	row := func(ep string) {
		key := endpointKey(ep)
		seen[key] = true
		r := reports[key]
		status := "not covered by the suite"
		if why, ok := coveredElsewhere[ep]; ok {
			status = "not compared here: " + why
		}
		var scen []string
		if r != nil {
			for s := range r.scenarios {
				scen = append(scen, s)
			}
			sort.Strings(scen)
			status = r.status()
		}
		if len(scen) > 4 {
			scen = append(scen[:4], fmt.Sprintf("and %d more", len(scen)-4))
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", ep, status, strings.Join(scen, ", "))
	}
	for _, ep := range eps {
		row(ep)
	}
	var other []string
	for key := range reports {
		if !seen[key] {
			other = append(other, key)
		}
	}
	sort.Strings(other)
	if len(other) > 0 {
		fmt.Fprintf(&b, "\nRequests outside the API's list (routing, versions):\n\n| Request | Berth | Scenarios |\n|---|---|---|\n")
		for _, key := range other {
			row(key)
		}
	}

	fmt.Fprintf(&b, "\n## Intentional differences\n\n")
	for _, res := range results {
		reasons := map[string][]string{}
		for _, d := range res.intentional {
			reasons[d.reason] = append(reasons[d.reason], d.label)
		}
		for _, reason := range sortedKeysOf(reasons) {
			fmt.Fprintf(&b, "- **%s** (`%s`): %s\n", res.sc.name, reasons[reason][0], reason)
		}
	}
	fmt.Fprintf(&b, "\n## Documented exceptions\n\nDifferences in the JSON keys and content types of answers that hold for every client; the comparison leaves them out.\n\n")
	fmt.Fprintf(&b, "- A `null` in dockerd's answer where Berth sends an empty list or object (`[]`, `{}`): every client reads both, and a current dockerd sends the empty form in most places.\n")
	fmt.Fprintf(&b, "- The keys of labels, options and driver options are data, not schema: compared as present or not.\n")
	for _, ex := range exceptions {
		mark := ""
		if !used[ex.reason] {
			mark = " (not met in this run)"
		}
		fmt.Fprintf(&b, "- `%s`: `%s` sent by %s only%s: %s\n", ex.endpoint, ex.key, ex.side, mark, ex.reason)
	}
	fmt.Fprintf(&b, "\n## Normalizations\n\n")
	for _, n := range normalizations {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func (r *endpointReport) status() string {
	switch {
	case r.differs:
		return "**differs from dockerd** (see the suite's output)"
	case len(r.pending) > 0 && r.settled == 0:
		return "pending: " + strings.Join(sortedKeysOf(r.pending), "; ")
	case len(r.berthOnly) > 0 && len(r.berthOnly) == len(r.scenarios):
		return "checked against the documented behaviour: " + strings.Join(sortedKeysOf(r.berthOnly), "; ")
	}
	s := "same as dockerd"
	if r.answers == 0 && len(r.refusals) > 0 {
		s = "refused, as by dockerd: " + strings.Join(sortedKeysOf(r.refusals), ", ")
		if len(r.refusals) > 2 {
			s = "refused, as by dockerd"
		}
	}
	if len(r.intentional) > 0 {
		s += ", except where noted below (intentional)"
	}
	if len(r.pending) > 0 {
		s += "; pending in part: " + strings.Join(sortedKeysOf(r.pending), "; ")
	}
	return s
}

func sortedKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
