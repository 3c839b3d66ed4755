package engine_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestStatsNoStreamAndStream(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	e.d.Must("run", "-d", "--name", "busy", "-m", "64m", "--pids-limit", "50", e.ref, "sh", "-c", "while :; do :; done")
	out := e.d.Must("stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}", "busy")
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 6 || f[0] != "busy" || !strings.HasSuffix(f[2], "/ 64MiB") || f[5] == "0" || f[5] == "" {
		t.Fatalf("stats --no-stream: %q", out)
	}
	var cpu float64
	json.Unmarshal([]byte(strings.TrimSuffix(f[1], "%")), &cpu)
	if cpu < 10 {
		t.Fatalf("a busy loop shows %s CPU", f[1])
	}
	// The raw stream: one sample a second, precpu filled from the second on.
	resp, err := e.agent.HTTPClient().Get("http://berth/containers/busy/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	began := time.Now()
	type sample struct {
		Read        time.Time
		MemoryStats struct{ Limit, Usage uint64 } `json:"memory_stats"`
		PreCPUStats struct {
			CPUUsage struct {
				TotalUsage uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"precpu_stats"`
		PidsStats struct{ Current, Limit uint64 } `json:"pids_stats"`
		Networks  map[string]struct {
			RxBytes uint64 `json:"rx_bytes"`
		} `json:"networks"`
	}
	var samples []sample
	for i := 0; i < 2; i++ {
		var s sample
		if err := dec.Decode(&s); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, s)
	}
	s := samples[1]
	if s.MemoryStats.Limit != 64<<20 || s.MemoryStats.Usage == 0 || s.PreCPUStats.CPUUsage.TotalUsage == 0 ||
		s.PidsStats.Limit != 50 || s.PidsStats.Current == 0 || len(s.Networks) != 1 {
		t.Fatalf("second sample: %+v", s)
	}
	if d := time.Since(began); d < 800*time.Millisecond || d > 3*time.Second {
		t.Fatalf("two samples took %v", d)
	}
	e.d.Must("rm", "-f", "busy")
}
