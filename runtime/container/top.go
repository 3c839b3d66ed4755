//go:build linux

package container

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/user"

	"github.com/berth-dev/berth/runtime/errdefs"
)

const clockTicks = 100 // USER_HZ on Linux

// Top lists the container's processes. With no ps_args (or "-ef") the list
// is read from /proc, so it works in the VM, which has no ps; other
// arguments run the host's ps and keep the container's rows, as dockerd does.
func (m *Manager) Top(ref, psArgs string) (ctr.TopResponse, error) {
	c, err := m.Get(ref)
	if err != nil {
		return ctr.TopResponse{}, err
	}
	c.mu.Lock()
	r, status, id := c.run, c.rec.State.Status, c.rec.ID
	c.mu.Unlock()
	if r == nil {
		return ctr.TopResponse{}, errdefs.Conflict("container %s is not running", id)
	}
	if status == ctr.StateRestarting {
		return ctr.TopResponse{}, errdefs.Conflict("container %s is restarting, wait until the container is running", id)
	}
	if r.cg == nil {
		return ctr.TopResponse{}, fmt.Errorf("top: no cgroup for container %s", id)
	}
	pids, err := r.cg.GetAllPids()
	if err != nil {
		return ctr.TopResponse{}, fmt.Errorf("top: %w", err)
	}
	slices.Sort(pids)
	if psArgs == "" || psArgs == "-ef" {
		return procTop(pids), nil
	}
	return psTop(psArgs, pids)
}

func procTop(pids []int) ctr.TopResponse {
	out := ctr.TopResponse{Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}, Processes: [][]string{}}
	boot := bootTime()
	uptime := time.Since(boot).Seconds()
	for _, pid := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited meanwhile
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 20 {
			continue
		}
		comm := string(st[bytes.IndexByte(st, '(')+1 : i])
		ppid := f[1]
		ttyNr, _ := strconv.Atoi(f[4])
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		start, _ := strconv.ParseFloat(f[19], 64)
		cpuSecs := (utime + stime) / clockTicks
		elapsed := uptime - start/clockTicks
		pc := 0
		if elapsed > 0 {
			pc = min(int(cpuSecs*100/elapsed), 99)
		}
		started := boot.Add(time.Duration(start / clockTicks * float64(time.Second)))
		stimeCol := started.Format("Jan02")
		if y, d := started.YearDay(), time.Now().YearDay(); y == d && started.Year() == time.Now().Year() {
			stimeCol = started.Format("15:04")
		}
		t := int(cpuSecs)
		out.Processes = append(out.Processes, []string{
			procUser(pid), strconv.Itoa(pid), ppid, strconv.Itoa(pc), stimeCol, ttyName(ttyNr),
			fmt.Sprintf("%02d:%02d:%02d", t/3600, t/60%60, t%60), procCmd(pid, comm),
		})
	}
	return out
}

func bootTime() time.Time {
	b, _ := os.ReadFile("/proc/stat")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(n, 0)
			}
		}
	}
	return time.Now()
}

// procUser is the real UID's name in the engine host's passwd, as ps shows it.
func procUser(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			if uid, err := strconv.Atoi(f[0]); err == nil {
				if u, err := user.LookupUid(uid); err == nil {
					return u.Name
				}
			}
			return f[0]
		}
	}
	return "?"
}

func ttyName(nr int) string {
	if nr == 0 {
		return "?"
	}
	major := (nr >> 8) & 0xfff
	minor := (nr & 0xff) | ((nr >> 12) & 0xfff00)
	switch {
	case major >= 136 && major <= 143:
		return fmt.Sprintf("pts/%d", minor+(major-136)*256)
	case major == 4 && minor < 64:
		return fmt.Sprintf("tty%d", minor)
	}
	return "?"
}

func procCmd(pid int, comm string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return "[" + comm + "]"
	}
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}

// psTop runs ps with the caller's arguments and keeps the rows of pids.
func psTop(args string, pids []int) (ctr.TopResponse, error) {
	ps, err := exec.LookPath("ps")
	if err != nil {
		return ctr.TopResponse{}, errdefs.InvalidArgument("ps_args %q need ps, which this engine host does not have; use no arguments", args)
	}
	out, err := exec.Command(ps, strings.Fields(args)...).Output()
	if err != nil {
		return ctr.TopResponse{}, errdefs.InvalidArgument("error running ps %s: %v", args, err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return ctr.TopResponse{}, errdefs.InvalidArgument("ps %s printed nothing", args)
	}
	titles := strings.Fields(lines[0])
	pidCol := slices.Index(titles, "PID")
	if pidCol < 0 {
		return ctr.TopResponse{}, errdefs.InvalidArgument("Couldn't find PID field in ps output")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	res := ctr.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil || !want[pid] {
			continue
		}
		// The last column (the command) may contain spaces.
		if len(f) > len(titles) {
			f = append(f[:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		}
		res.Processes = append(res.Processes, f)
	}
	return res, nil
}
