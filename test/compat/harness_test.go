// Package compat_test is the differential suite: every scenario sends the
// same requests to Berth and to a real dockerd (Debian's docker.io, started
// here on its own socket and state) and compares what came back: status
// codes, content types, the JSON keys of each response (recursively, with
// the kind of each value), stream framing and what each stream carried,
// error classes, event sequences, and the values a scenario picks. A
// difference fails the test, printed side by side, unless it is one of the
// documented exceptions (exceptions_test.go) or the scenario declares it
// intentional with the reason. `-compat.doc` writes docs/compat.md from the
// results.
package compat_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/internal/testkit"
)

var (
	docPath  = flag.String("compat.doc", "", "write the endpoint table (docs/compat.md) from this run's results")
	onlyRun  = flag.String("compat.run", "", "run only the scenarios whose name matches this regular expression")
	showBody = flag.Bool("compat.verbose", false, "log both engines' responses for every scenario, not only differing ones")
	parallel = flag.Int("compat.parallel", 4, "scenarios run at once")
	brief    = flag.Bool("compat.brief", false, "on a difference, print what differs without both responses")
)

// baseVersion is the API version requests use unless a scenario picks
// another: the newest that dockerd 20.10 (API 1.41) speaks.
const baseVersion = "1.41"

// scenario is a sequence of requests run the same way on both engines.
type scenario struct {
	name string
	run  func(c *C, e *env)
	// intentional maps observation labels (regular expressions) to the
	// reason Berth answers them differently from dockerd. A declared
	// difference that no longer occurs fails the test, so the list stays true.
	intentional map[string]string
	// mayAgree marks intentional differences that depend on the machine
	// (what dockerd can do here): agreeing is no error.
	mayAgree bool
	// serial scenarios read engine-wide state (every image, container,
	// volume): they run alone, before the others.
	serial bool
	// pending names the work that adds an endpoint this scenario needs
	// (another issue in progress): a difference is reported, not failed.
	pending string
	// berthOnly scenarios run on Berth alone and check its answers against
	// the documented behaviour (C.Check): for API versions dockerd 20.10
	// does not speak, and requests dockerd would act on (swarm init).
	berthOnly string // why there is no comparison
}

// env is what every scenario shares: the image references both engines
// pulled from the test's registry.
type env struct {
	registry string
	busybox  string // busybox with CMD ["sh"]
	rich     string // an image with most config fields set
	hostDir  string // a host directory holding "file", for binds
}

// result is one scenario's outcome.
type result struct {
	sc          *scenario
	berth, dock []obs
	diffs       []diff
	intentional []diff // differences the scenario declares, with reasons
	exceptions  map[string]bool
	checks      []string // berth-only scenarios: the checks that failed
	took        time.Duration
}

func (r *result) agrees() bool {
	return len(r.diffs) == 0 && len(r.intentional) == 0 && len(r.checks) == 0 && r.sc.berthOnly == ""
}

var scenarios []*scenario

// register adds scenarios; each scenario file calls it from init.
func register(s ...*scenario) { scenarios = append(scenarios, s...) }

func TestCompat(t *testing.T) {
	testkit.RequireRoot(t)
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	// dockerd reaches registries on 127.0.0.0/8 over plain HTTP by default
	// (InsecureRegistryCIDRs); the flag only makes that explicit.
	d, err := testkit.StartDockerd(t, testkit.DockerdOptions{InsecureRegistries: []string{reg.Addr}})
	if err != nil {
		t.Skipf("the differential tests need a real dockerd (Debian's docker.io) to compare with: %v", err)
	}
	a := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{"--insecure-registry", reg.Addr}})
	t.Cleanup(func() { testkit.RemoveCgroup("/compat-cgroup-parent") }) // create/CgroupParent's
	berth, dock := newEndpoint("berth", a.Socket), newEndpoint("dockerd", d.Socket)

	e := &env{registry: reg.Addr, busybox: reg.Addr + "/compat/busybox:latest", rich: reg.Addr + "/compat/rich:v1"}
	e.hostDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(e.hostDir, "file"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Push(t, e.busybox, testkit.BusyboxImage(t))
	testkit.Push(t, e.rich, richImage(t))
	for _, ep := range []*endpoint{berth, dock} {
		for _, ref := range []string{e.busybox, e.rich} {
			c := &C{eng: ep, version: baseVersion}
			r := c.Do(Req{Method: "POST", Path: "/images/create?fromImage=" + ref})
			if r.Status != 200 || strings.Contains(string(r.Body), `"error"`) {
				t.Fatalf("%s: pull %s: %d %s %v", ep.name, ref, r.Status, r.Body, r.Err)
			}
		}
	}

	seen := map[string]bool{}
	for _, s := range scenarios {
		if seen[s.name] {
			t.Fatalf("scenario %q registered twice (the doc is keyed by name)", s.name)
		}
		seen[s.name] = true
	}
	var only *regexp.Regexp
	if *onlyRun != "" {
		only = regexp.MustCompile(*onlyRun)
	}
	var picked []*scenario
	for _, sc := range scenarios {
		if only == nil || only.MatchString(sc.name) {
			picked = append(picked, sc)
		}
	}
	start := time.Now()
	results := make([]*result, len(picked))
	sem := make(chan struct{}, max(*parallel, 1))
	// Scenarios that read engine-wide state run first, alone, while the
	// engines hold only what setup put there.
	for i, sc := range picked {
		if sc.serial {
			results[i] = runScenario(sc, e, berth, dock)
		}
	}
	var wg sync.WaitGroup
	for i, sc := range picked {
		if sc.serial {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			results[i] = runScenario(sc, e, berth, dock)
			<-sem
		}()
	}
	wg.Wait()
	for _, res := range results {
		t.Run(res.sc.name, func(t *testing.T) { report(t, res) })
	}
	slow := append([]*result(nil), results...)
	sort.Slice(slow, func(i, j int) bool { return slow[i].took > slow[j].took })
	var sl []string
	for _, r := range slow[:min(8, len(slow))] {
		sl = append(sl, fmt.Sprintf("%s %v", r.sc.name, r.took.Round(100*time.Millisecond)))
	}
	t.Logf("slowest scenarios: %s", strings.Join(sl, ", "))
	agree := 0
	compared := 0
	for _, r := range results {
		if r.sc.berthOnly == "" {
			compared++
		}
		if r.agrees() {
			agree++
		}
	}
	t.Logf("Berth and dockerd agree in %d of %d scenarios (%v)", agree, compared, time.Since(start).Round(time.Second))
	if *docPath != "" {
		if only != nil {
			t.Fatalf("-compat.doc needs every scenario: drop -compat.run")
		}
		if err := writeDoc(*docPath, results); err != nil {
			t.Fatal(err)
		}
	}
}

// unsafeName is what a container name cannot hold.
var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// runScenario runs sc on both engines at once and compares.
func runScenario(sc *scenario, e *env, berth, dock *endpoint) *result {
	slug := strings.Trim(unsafeName.ReplaceAllString(sc.name, "-"), "-")
	start := time.Now()
	cs := [2]*C{{eng: berth, scenario: slug, version: baseVersion}, {eng: dock, scenario: slug, version: baseVersion}}
	var wg sync.WaitGroup
	for i, c := range cs {
		if sc.berthOnly != "" && i > 0 {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					c.Value("scenario panicked", fmt.Sprint(p))
				}
			}()
			sc.run(c, e)
		}()
	}
	wg.Wait()
	res := &result{sc: sc, berth: cs[0].obs, dock: cs[1].obs, exceptions: map[string]bool{}, took: time.Since(start)}
	if sc.berthOnly != "" {
		res.checks = cs[0].failed
		return res
	}
	for _, d := range compare(res.berth, res.dock, res.exceptions) {
		if reason := sc.intentionalFor(d.label); reason != "" {
			d.reason = reason
			res.intentional = append(res.intentional, d)
		} else {
			res.diffs = append(res.diffs, d)
		}
	}
	return res
}

func (sc *scenario) intentionalFor(label string) string {
	for pat, reason := range sc.intentional {
		if regexp.MustCompile(pat).MatchString(label) {
			return reason
		}
	}
	return ""
}

func report(t *testing.T, r *result) {
	if r.sc.berthOnly != "" {
		for _, f := range r.checks {
			t.Errorf("%s", f)
		}
		if *showBody || len(r.checks) > 0 {
			t.Log(sideBySide(r.berth, nil, nil))
		}
		return
	}
	if *showBody {
		t.Log(sideBySide(r.berth, r.dock, nil))
	}
	for pat := range r.sc.intentional {
		found := false
		for _, d := range r.intentional {
			if regexp.MustCompile(pat).MatchString(d.label) {
				found = true
			}
		}
		if !found && len(r.diffs) == 0 && !r.sc.mayAgree {
			t.Errorf("declared intentional difference %q no longer occurs: Berth now answers as dockerd; remove it", pat)
		}
	}
	for _, d := range r.intentional {
		t.Logf("intentional: %s (%s): %s", d.label, d.field, d.reason)
	}
	if len(r.diffs) == 0 {
		return
	}
	msg := fmt.Sprintf("%d difference(s) from dockerd:\n%s", len(r.diffs), sideBySide(r.berth, r.dock, r.diffs))
	if r.sc.pending != "" {
		t.Logf("pending (%s): %s", r.sc.pending, msg)
		return
	}
	t.Error(msg)
}

// diff is one observation that differs.
type diff struct {
	index    int
	endpoint string
	label    string
	field    string
	berth    string
	dock     string
	reason   string
}

// compare walks both lists; exceptions collects the documented exceptions
// that applied.
func compare(b, d []obs, used map[string]bool) []diff {
	var out []diff
	n := max(len(b), len(d))
	for i := 0; i < n; i++ {
		if i >= len(b) || i >= len(d) {
			var label string
			if i < len(b) {
				label = b[i].label
			} else {
				label = d[i].label
			}
			out = append(out, diff{index: i, label: label, field: "sequence", berth: fmt.Sprint(len(b), " observations"), dock: fmt.Sprint(len(d), " observations")})
			break
		}
		x, y := b[i], d[i]
		add := func(field, bv, dv string) {
			out = append(out, diff{index: i, endpoint: x.endpoint, label: x.label, field: field, berth: bv, dock: dv})
		}
		if x.label != y.label {
			add("request", x.label, y.label)
			break // the scenarios took different paths: the rest means nothing
		}
		if x.status != y.status {
			add("status", fmt.Sprint(x.status, " ", errMessage(x)), fmt.Sprint(y.status, " ", errMessage(y)))
		}
		if !sameType(x, y, used) {
			add("content type", x.ctype, y.ctype)
		}
		if x.framing != y.framing {
			add("framing", x.framing, y.framing)
		}
		if x.streams != y.streams {
			add("streams", x.streams, y.streams)
		}
		if x.value != y.value {
			add("value", x.value, y.value)
		}
		onlyB, onlyD := keyDiff(x.endpoint, x.keys, y.keys, used)
		if len(onlyB) > 0 || len(onlyD) > 0 {
			add("keys", strings.Join(onlyB, " "), strings.Join(onlyD, " "))
		}
	}
	return out
}

// errMessage is an error answer's message, for the side-by-side report.
func errMessage(o obs) string {
	var m struct{ Message string }
	if json.Unmarshal([]byte(o.body), &m) == nil {
		return m.Message
	}
	return ""
}

// sameType compares content types; dockerd 20.10 sends none with some
// empty answers, which is no difference a client can see.
func sameType(x, y obs, used map[string]bool) bool {
	if x.ctype == y.ctype {
		return true
	}
	bx := exceptionFor(x.endpoint, "Content-Type="+x.ctype, "berth")
	dy := exceptionFor(y.endpoint, "Content-Type="+y.ctype, "dockerd")
	if bx != "" && dy != "" {
		used[bx], used[dy] = true, true
		return true
	}
	empty := func(o obs) bool { return strings.TrimSpace(o.body) == "" && o.framing == "" }
	return empty(x) && empty(y)
}

// keyDiff is the keys only Berth sent and only dockerd sent, less the
// documented exceptions. A null in dockerd's answer where Berth sends an
// empty list or object is no difference (see exceptions_test.go).
func keyDiff(endpoint string, b, d []string, used map[string]bool) (onlyB, onlyD []string) {
	bs, ds := map[string]bool{}, map[string]bool{}
	for _, k := range b {
		bs[k] = true
	}
	for _, k := range d {
		ds[k] = true
	}
	for _, k := range d {
		// dockerd's null where Berth sends an empty list or object is no
		// difference.
		if !strings.HasSuffix(k, "=null") {
			continue
		}
		p := strings.TrimSuffix(k, "=null")
		for _, kind := range []string{"=array", "=object"} {
			if bs[p+kind] {
				delete(ds, k)
				if !ds[p+kind] {
					delete(bs, p+kind)
				}
			}
		}
	}
	for k := range bs {
		if ds[k] {
			continue
		}
		if ex := exceptionFor(endpoint, k, "berth"); ex != "" {
			used[ex] = true
			continue
		}
		onlyB = append(onlyB, k)
	}
	for k := range ds {
		if bs[k] {
			continue
		}
		if ex := exceptionFor(endpoint, k, "dockerd"); ex != "" {
			used[ex] = true
			continue
		}
		onlyD = append(onlyD, k)
	}
	sort.Strings(onlyB)
	sort.Strings(onlyD)
	return onlyB, onlyD
}

// sideBySide prints both engines' observations in two columns, only the
// differing ones when diffs is given.
func sideBySide(b, d []obs, diffs []diff) string {
	var sb strings.Builder
	shown := map[int]bool{}
	idx := []int{}
	if diffs == nil {
		for i := 0; i < max(len(b), len(d)); i++ {
			idx = append(idx, i)
		}
	}
	for _, df := range diffs {
		if !shown[df.index] {
			shown[df.index] = true
			idx = append(idx, df.index)
		}
	}
	for _, i := range idx {
		var x, y obs
		if i < len(b) {
			x = b[i]
		}
		if i < len(d) {
			y = d[i]
		}
		fmt.Fprintf(&sb, "── #%d %s\n", i+1, firstNonEmpty(x.label, y.label))
		for _, df := range diffs {
			if df.index == i {
				fmt.Fprintf(&sb, "   %s differs:\n     berth:   %s\n     dockerd: %s\n", df.field, clip(df.berth, 3000), clip(df.dock, 3000))
			}
		}
		if *brief && diffs != nil {
			continue
		}
		left, right := render(x), render(y)
		const w = 78
		fmt.Fprintf(&sb, "   %-*s │ %s\n", w, "berth", "dockerd")
		for j := 0; j < max(len(left), len(right)) && j < 60; j++ {
			var l, r string
			if j < len(left) {
				l = left[j]
			}
			if j < len(right) {
				r = right[j]
			}
			fmt.Fprintf(&sb, "   %-*s │ %s\n", w, clip(l, w), clip(r, w))
		}
	}
	return sb.String()
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// render is an observation as lines: the status, then the body (indented
// JSON when it is JSON, quoted stream content otherwise).
func render(o obs) []string {
	if o.label == "" {
		return []string{"(nothing)"}
	}
	var lines []string
	if o.endpoint == "" {
		return []string{o.value}
	}
	lines = append(lines, fmt.Sprintf("%d %s", o.status, o.ctype))
	if o.value != "" {
		lines = append(lines, o.value)
	}
	if o.framing != "" {
		lines = append(lines, o.framing+": "+o.streams)
		return lines
	}
	body := strings.TrimSpace(o.body)
	var v any
	if json.Unmarshal([]byte(body), &v) == nil {
		b, _ := json.MarshalIndent(v, "", " ")
		body = string(b)
	}
	return append(lines, strings.Split(body, "\n")...)
}

// richImage sets most image config fields, so inspect and create have
// something to show in each.
func richImage(t *testing.T) v1.Image {
	return testkit.ImageFromLayers(t, v1.Config{
		Cmd:          []string{"sh"},
		Env:          []string{"PATH=" + testkit.DefaultPath, "RICH=1"},
		WorkingDir:   "/home",
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Labels:       map[string]string{"org.example.kind": "rich"},
		StopSignal:   "SIGTERM",
		User:         "0:0",
		Healthcheck:  &v1.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 30 * time.Second},
	}, testkit.LayerTar(testkit.BusyboxEntries(t)))
}
