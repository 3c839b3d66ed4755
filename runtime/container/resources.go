//go:build linux

package container

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/blkiodev"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// cgroupHas reports whether the host's cgroups offer a control file: v1
// (controller/file) or v2 (file at the root's children, e.g. io.weight).
func cgroupHas(v1Controller, v1File, v2File string) bool {
	if cgroups.IsCgroup2UnifiedMode() {
		if v2File == "" {
			return false
		}
		ctl, _, _ := strings.Cut(v2File, ".")
		return strings.Contains(readFileString("/sys/fs/cgroup/cgroup.subtree_control"), ctl)
	}
	_, err := os.Stat("/sys/fs/cgroup/" + v1Controller + "/" + v1File)
	return err == nil
}

// checkResources applies dockerd's rules for the resource limits a create
// names that this host cannot honour: a warning and the limit discarded
// where dockerd warns, an error where it refuses. Limits that exist only
// on Windows are refused by name rather than ignored.
func checkResources(hc *ctr.HostConfig) ([]string, error) {
	r := &hc.Resources
	var warnings []string
	if hc.ShmSize < 0 {
		return nil, errdefs.InvalidArgument("SHM size can not be less than 0")
	}
	if len(hc.StorageOpt) > 0 {
		// A size quota needs overlay over xfs with project quotas, which
		// the engine's store does not use: refused with dockerd's words.
		return nil, errdefs.As(errdefs.KindUnknown, fmt.Errorf("--storage-opt is supported only for overlay over xfs with 'pquota' mount option"))
	}
	if r.CPUPercent > 0 {
		warnings = append(warnings, "linux does not support CPU percent. Percent discarded.")
		r.CPUPercent = 0
	}
	if r.CPUCount > 0 {
		warnings = append(warnings, "linux does not support CPU count. Count discarded.")
		r.CPUCount = 0
	}
	if r.IOMaximumBandwidth != 0 || r.IOMaximumIOps != 0 {
		return nil, errdefs.InvalidArgument("Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps")
	}
	if (r.CPURealtimePeriod > 0 || r.CPURealtimeRuntime > 0) && !cgroupHas("cpu", "cpu.rt_runtime_us", "") {
		return nil, errdefs.InvalidArgument("Your kernel does not support CPU real-time scheduler")
	}
	if r.CPURealtimePeriod > 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod {
		return nil, errdefs.InvalidArgument("cpu-rt-runtime cannot be higher than cpu-rt-period")
	}
	if r.CpusetCpus != "" {
		if err := checkCpuset(r.CpusetCpus, "/sys/devices/system/cpu/online", "cpus", "CPUs"); err != nil {
			return nil, err
		}
	}
	if r.CpusetMems != "" {
		if err := checkCpuset(r.CpusetMems, "/sys/devices/system/node/online", "mems", "memory nodes"); err != nil {
			return nil, err
		}
	}
	if r.BlkioWeight > 0 && !cgroupHas("blkio", "blkio.weight", "io.weight") {
		warnings = append(warnings, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		r.BlkioWeight = 0
	}
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return nil, errdefs.InvalidArgument("Range of blkio weight is from 10 to 1000")
	}
	if len(r.BlkioWeightDevice) > 0 && !cgroupHas("blkio", "blkio.weight_device", "io.weight") {
		warnings = append(warnings, "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.")
		r.BlkioWeightDevice = nil
	}
	throttles := []struct {
		list *[]*blkiodev.ThrottleDevice
		file string
		warn string
	}{
		{&r.BlkioDeviceReadBps, "blkio.throttle.read_bps_device", "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."},
		{&r.BlkioDeviceWriteBps, "blkio.throttle.write_bps_device", "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded."},
		{&r.BlkioDeviceReadIOps, "blkio.throttle.read_iops_device", "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded."},
		{&r.BlkioDeviceWriteIOps, "blkio.throttle.write_iops_device", "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded."},
	}
	for _, t := range throttles {
		if len(*t.list) > 0 && !cgroupHas("blkio", t.file, "io.max") {
			warnings = append(warnings, t.warn)
			*t.list = nil
		}
	}
	return warnings, nil
}

// checkCpuset checks a cpuset list ("0-2,4") against what the host has
// online, as dockerd does.
func checkCpuset(list, onlineFile, kind, what string) error {
	want, err := parseCpuset(list)
	if err != nil {
		return errdefs.InvalidArgument("Invalid value %s for cpuset %s", list, kind)
	}
	online := strings.TrimSpace(readFileString(onlineFile))
	if online == "" {
		return nil // unknown: the start will tell
	}
	have, err := parseCpuset(online)
	if err != nil {
		return nil
	}
	for n := range want {
		if !have[n] {
			return errdefs.InvalidArgument("Requested %s are not available - requested %s, available: %s", what, list, online)
		}
	}
	return nil
}

func parseCpuset(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("invalid cpuset %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("invalid cpuset %q", s)
			}
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}

// blockIO is the spec's block I/O limits: the weights and throttles the
// host supports (checkResources discarded the others, with a warning).
func blockIO(r ctr.Resources) (*specs.LinuxBlockIO, error) {
	b := &specs.LinuxBlockIO{}
	if r.BlkioWeight > 0 {
		w := r.BlkioWeight
		b.Weight = &w
	}
	for _, d := range r.BlkioWeightDevice {
		major, minor, err := deviceNumbers(d.Path)
		if err != nil {
			return nil, err
		}
		w := d.Weight
		wd := specs.LinuxWeightDevice{Weight: &w}
		wd.Major, wd.Minor = major, minor
		b.WeightDevice = append(b.WeightDevice, wd)
	}
	for _, t := range []struct {
		in  []*blkiodev.ThrottleDevice
		out *[]specs.LinuxThrottleDevice
	}{
		{r.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice}, {r.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice},
		{r.BlkioDeviceReadIOps, &b.ThrottleReadIOPSDevice}, {r.BlkioDeviceWriteIOps, &b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.in {
			major, minor, err := deviceNumbers(d.Path)
			if err != nil {
				return nil, err
			}
			td := specs.LinuxThrottleDevice{Rate: d.Rate}
			td.Major, td.Minor = major, minor
			*t.out = append(*t.out, td)
		}
	}
	if b.Weight == nil && b.WeightDevice == nil && b.ThrottleReadBpsDevice == nil && b.ThrottleWriteBpsDevice == nil &&
		b.ThrottleReadIOPSDevice == nil && b.ThrottleWriteIOPSDevice == nil {
		return nil, nil
	}
	return b, nil
}

// deviceNumbers is the major and minor number of the block device at path.
func deviceNumbers(path string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, errdefs.InvalidArgument("block device %s: %v", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, errdefs.InvalidArgument("%s is not a block device", path)
	}
	return int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev))), nil
}
