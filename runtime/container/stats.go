//go:build linux

package container

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// Stats samples a container's resource use as GET /containers/{id}/stats
// reports it: cgroup counters (v1 or v2, read by libcontainer's cgroup
// manager), the network counters of its namespace, and the host's CPU time
// the CLI computes CPU % against. PreCPUStats is left for the caller, who
// knows the previous sample. A stopped container reports zeros.
func (m *Manager) Stats(ref string) (*ctr.StatsResponse, error) {
	c, err := m.Get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	r, name, id := c.run, c.rec.Name, c.rec.ID
	c.mu.Unlock()
	out := &ctr.StatsResponse{ID: id, Name: "/" + name, OSType: "linux", Read: time.Now().UTC()}
	if r == nil || r.cg == nil {
		out.Read = time.Time{}
		return out, nil
	}
	st, err := r.cg.GetStats()
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", id, err)
	}
	cpu := st.CpuStats.CpuUsage
	out.CPUStats = ctr.CPUStats{
		CPUUsage: ctr.CPUUsage{TotalUsage: cpu.TotalUsage, PercpuUsage: cpu.PercpuUsage,
			UsageInKernelmode: cpu.UsageInKernelmode, UsageInUsermode: cpu.UsageInUsermode},
		SystemUsage: systemCPUUsage(),
		OnlineCPUs:  uint32(runtime.NumCPU()),
		ThrottlingData: ctr.ThrottlingData{Periods: st.CpuStats.ThrottlingData.Periods,
			ThrottledPeriods: st.CpuStats.ThrottlingData.ThrottledPeriods, ThrottledTime: st.CpuStats.ThrottlingData.ThrottledTime},
	}
	mem := st.MemoryStats
	out.MemoryStats = ctr.MemoryStats{Usage: mem.Usage.Usage, MaxUsage: mem.Usage.MaxUsage, Failcnt: mem.Usage.Failcnt,
		Limit: memoryLimit(mem.Usage.Limit), Stats: mem.Stats}
	out.PidsStats = ctr.PidsStats{Current: st.PidsStats.Current, Limit: st.PidsStats.Limit}
	// The lists cgroup v1 has, empty when the kernel keeps none, as dockerd
	// sends them.
	out.BlkioStats = ctr.BlkioStats{IoServiceBytesRecursive: blkio(st.BlkioStats.IoServiceBytesRecursive),
		IoServicedRecursive: blkio(st.BlkioStats.IoServicedRecursive), IoQueuedRecursive: blkio(st.BlkioStats.IoQueuedRecursive),
		IoServiceTimeRecursive: blkio(st.BlkioStats.IoServiceTimeRecursive), IoWaitTimeRecursive: blkio(st.BlkioStats.IoWaitTimeRecursive),
		IoMergedRecursive: blkio(st.BlkioStats.IoMergedRecursive), IoTimeRecursive: blkio(st.BlkioStats.IoTimeRecursive),
		SectorsRecursive: blkio(st.BlkioStats.SectorsRecursive)}
	if r.pid > 0 {
		out.Networks = netDevStats(r.pid)
	}
	return out, nil
}

func blkio(in []cgroups.BlkioStatEntry) []ctr.BlkioStatEntry {
	out := make([]ctr.BlkioStatEntry, 0, len(in))
	for _, e := range in {
		out = append(out, ctr.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	return out
}

// memoryLimit caps "no limit" (a huge cgroup value) at the machine's
// memory, as dockerd reports it.
func memoryLimit(limit uint64) uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return limit
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	if limit == 0 || limit > total {
		return total
	}
	return limit
}

// systemCPUUsage is the host's total CPU time in nanoseconds (the first
// line of /proc/stat, in USER_HZ ticks of 10 ms).
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[0] != "cpu" {
			continue
		}
		var ticks uint64
		for _, v := range fields[1:8] { // user nice system idle iowait irq softirq
			n, _ := strconv.ParseUint(v, 10, 64)
			ticks += n
		}
		return ticks * (uint64(time.Second) / 100)
	}
	return 0
}

// netDevStats reads the interface counters of pid's network namespace,
// loopback excluded, keyed by interface as dockerd reports them.
func netDevStats(pid int) map[string]ctr.NetworkStats {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	out := map[string]ctr.NetworkStats{}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" || strings.Contains(name, "|") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			continue
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
		out[name] = ctr.NetworkStats{RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11)}
	}
	return out
}
