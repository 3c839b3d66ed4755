package engine_test

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func healthStatus(t *testing.T, e imageEnv, id string) string {
	t.Helper()
	s, _ := field(inspect(t, e.d, id), "State", "Health", "Status").(string)
	return s
}

// A HEALTHCHECK from the image runs in the container: starting, then
// healthy once its test passes; ps, inspect and events show it.
func TestHealthcheckFromImage(t *testing.T) {
	e := newImageEnv(t)
	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nHEALTHCHECK --interval=300ms --retries=2 CMD test -f /tmp/ok && echo fine\n"})
	e.d.Must("build", "-t", "hc:1", dir)
	since := time.Now().Unix()
	id := strings.TrimSpace(e.d.Must("run", "-d", "hc:1", "sleep", "60"))
	t.Cleanup(func() { e.d.Run(nil, "rm", "-f", id) })
	if st := healthStatus(t, e, id); st != "starting" && st != "unhealthy" {
		t.Fatalf("first status %q", st)
	}
	if ps := e.d.Must("ps", "--format", "{{.Status}}", "--filter", "id="+id); !strings.Contains(ps, "(health: starting)") && !strings.Contains(ps, "(unhealthy)") {
		t.Fatalf("ps: %q", ps)
	}
	e.d.Must("exec", id, "touch", "/tmp/ok")
	waitFor(t, "healthy", 10*time.Second, func() bool { return healthStatus(t, e, id) == "healthy" })
	if ps := e.d.Must("ps", "--format", "{{.Status}}", "--filter", "health=healthy"); !strings.Contains(ps, "(healthy)") {
		t.Fatalf("ps: %q", ps)
	}
	h := field(inspect(t, e.d, id), "State", "Health").(map[string]any)
	log := h["Log"].([]any)
	last := log[len(log)-1].(map[string]any)
	if last["ExitCode"].(float64) != 0 || last["Output"] != "fine\n" || h["FailingStreak"].(float64) != 0 {
		t.Fatalf("health: %+v", h)
	}
	// Back to failing: unhealthy after the retries.
	e.d.Must("exec", id, "rm", "/tmp/ok")
	waitFor(t, "unhealthy", 10*time.Second, func() bool { return healthStatus(t, e, id) == "unhealthy" })
	out := e.d.Must("events", "--since", strconv.FormatInt(since, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container="+id, "--format", "{{.Action}}")
	mustContain(t, "events", out, "health_status: healthy", "health_status: unhealthy")
}

// run's --health-* flags: a command, retries, timeouts, a start period,
// and --no-healthcheck.
func TestHealthcheckRunFlags(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	run := func(args ...string) string {
		id := strings.TrimSpace(e.d.Must(append(append([]string{"run", "-d"}, args...), e.ref, "sleep", "60")...))
		t.Cleanup(func() { e.d.Run(nil, "rm", "-f", id) })
		return id
	}
	failing := run("--health-cmd", "echo bad >&2; exit 1", "--health-interval", "200ms", "--health-retries", "2")
	timeout := run("--health-cmd", "sleep 5", "--health-interval", "200ms", "--health-timeout", "300ms", "--health-retries", "1")
	starting := run("--health-cmd", "exit 1", "--health-interval", "200ms", "--health-retries", "1", "--health-start-period", "30s")
	waitFor(t, "unhealthy", 10*time.Second, func() bool { return healthStatus(t, e, failing) == "unhealthy" })
	h := field(inspect(t, e.d, failing), "State", "Health").(map[string]any)
	if h["FailingStreak"].(float64) < 2 || !strings.Contains(h["Log"].([]any)[0].(map[string]any)["Output"].(string), "bad") {
		t.Fatalf("failing: %+v", h)
	}
	waitFor(t, "timeout unhealthy", 10*time.Second, func() bool { return healthStatus(t, e, timeout) == "unhealthy" })
	h = field(inspect(t, e.d, timeout), "State", "Health").(map[string]any)
	if l := h["Log"].([]any)[0].(map[string]any); l["ExitCode"].(float64) != -1 || !strings.Contains(l["Output"].(string), "Health check exceeded timeout (300ms)") {
		t.Fatalf("timeout: %+v", l)
	}
	// Inside the start period failures do not count.
	time.Sleep(time.Second)
	h = field(inspect(t, e.d, starting), "State", "Health").(map[string]any)
	if h["Status"] != "starting" || h["FailingStreak"].(float64) != 0 || len(h["Log"].([]any)) == 0 {
		t.Fatalf("start period: %+v", h)
	}
	// The container is stopped: no more checks, and it reads unhealthy.
	e.d.Must("stop", "-t", "0", failing)
	if st := healthStatus(t, e, failing); st != "unhealthy" {
		t.Fatalf("stopped: %q", st)
	}

	// The API refuses what dockerd refuses (the CLI checks some itself).
	for body, msg := range map[string]string{
		`{"Image":"` + e.ref + `","Healthcheck":{"Test":["CMD","true"],"Retries":-1}}`:  "Retries in Healthcheck cannot be negative",
		`{"Image":"` + e.ref + `","Healthcheck":{"Test":["CMD","true"],"Interval":10}}`: "Interval in Healthcheck cannot be less than 1ms",
	} {
		resp, err := e.agent.HTTPClient().Post("http://berth/containers/create", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), msg) {
			t.Fatalf("create %s: %d %s", body, resp.StatusCode, b)
		}
	}
	// A paused container is not probed (and not failing).
	lastProbe := func() any {
		l := field(inspect(t, e.d, starting), "State", "Health", "Log").([]any)
		return l[len(l)-1].(map[string]any)["End"]
	}
	e.d.Must("pause", starting)
	time.Sleep(400 * time.Millisecond) // a probe in flight ends
	before := lastProbe()
	time.Sleep(800 * time.Millisecond)
	if after := lastProbe(); after != before {
		t.Fatalf("probed while paused: last probe %v → %v", before, after)
	}
	e.d.Must("unpause", starting)
	waitFor(t, "probes after unpause", 5*time.Second, func() bool { return lastProbe() != before })

	dir := buildDir(t, map[string]string{"Dockerfile": "FROM " + e.ref + "\nHEALTHCHECK --interval=200ms CMD true\n"})
	e.d.Must("build", "-t", "hc:2", dir)
	none := strings.TrimSpace(e.d.Must("run", "-d", "--no-healthcheck", "hc:2", "sleep", "60"))
	t.Cleanup(func() { e.d.Run(nil, "rm", "-f", none) })
	// --health-interval alone keeps the image's command.
	merged := strings.TrimSpace(e.d.Must("run", "-d", "--health-interval", "300ms", "hc:2", "sleep", "60"))
	t.Cleanup(func() { e.d.Run(nil, "rm", "-f", merged) })
	waitFor(t, "merged healthy", 10*time.Second, func() bool { return healthStatus(t, e, merged) == "healthy" })
	time.Sleep(500 * time.Millisecond)
	if h := field(inspect(t, e.d, none), "State", "Health"); h != nil {
		t.Fatalf("--no-healthcheck: %+v", h)
	}
	if ps := e.d.Must("ps", "--format", "{{.Status}}", "--filter", "id="+none); strings.Contains(ps, "health") {
		t.Fatalf("ps: %q", ps)
	}
}
