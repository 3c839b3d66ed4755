//go:build linux

package container

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/capability"
	"github.com/moby/sys/devices"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/errdefs"
	bnet "github.com/berth-dev/berth/runtime/network"
)

// defaultCaps is Docker's default capability set.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Docker's masked and read-only /proc and /sys paths for unprivileged containers.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// defaultRuntime is the runtime name inspect reports, dockerd's default.
const defaultRuntime = "runc"

// defaultShmSize is dockerd's /dev/shm size.
const defaultShmSize = 64 << 20

// cfsPeriod is the CFS period used to turn --cpus into a quota, as dockerd.
const cfsPeriod = 100000

// runSpec is everything needed to start one container process.
type runSpec struct {
	config  *configs.Config
	process *specs.Process
	volumes []string // mounted for this run: unmount when it ends
}

// buildSpec turns a container record into an OCI runtime spec, as dockerd
// does, and converts it with libcontainer's specconv. rootfs is the mounted
// root filesystem; the user is resolved from its /etc/passwd and /etc/group.
func (m *Manager) buildSpec(rec *record, rootfs string, dir string, sb *bnet.Sandbox) (_ *runSpec, err error) {
	cfg, hc := rec.Config, rec.HostConfig
	linkHosts, linkEnv, err := m.linkInfo(rec, sb)
	if err != nil {
		return nil, err
	}
	proc, err := processSpec(rec, rootfs, linkEnv)
	if err != nil {
		return nil, err
	}
	if hc.OomScoreAdj != 0 {
		adj := hc.OomScoreAdj
		proc.OOMScoreAdj = &adj
	}

	spec := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: rootfs, Readonly: hc.ReadonlyRootfs},
		Hostname: cfg.Hostname,
		Process:  proc,
		Mounts:   defaultMounts(hc),
		Linux: &specs.Linux{
			CgroupsPath: cgroupPath(m.cfg.CgroupParent, hc, rec.ID),
			Sysctl:      hc.Sysctls,
			Resources:   &specs.LinuxResources{},
		},
	}
	if cfg.Domainname != "" {
		spec.Domainname = cfg.Domainname
	}
	binds, err := m.etcFiles(rec, dir, sb, linkHosts)
	if err != nil {
		return nil, err
	}
	spec.Mounts = append(spec.Mounts, binds...)
	tmpfs, err := tmpfsMounts(hc.Tmpfs)
	if err != nil {
		return nil, err
	}
	spec.Mounts = append(spec.Mounts, tmpfs...)
	vols, volNames, err := m.mountSpecs(rec)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil { // no run will unmount them
			for _, v := range volNames {
				m.cfg.Volumes.Unmount(v)
			}
		}
	}()
	spec.Mounts = append(spec.Mounts, vols...)

	spec.Linux.Namespaces, err = m.namespaces(hc)
	if err != nil {
		return nil, err
	}
	if hc.UTSMode.IsHost() {
		spec.Hostname = "" // the host's own: no UTS namespace to name
	}
	switch {
	case sb != nil && sb.Host, sb == nil && hc.NetworkMode.IsHost():
	case sb != nil:
		// The namespace runtime/network made and configured.
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.Path})
	default:
		// No network manager: a private namespace with loopback up
		// (specconv adds the loopback strategy).
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	if privateCgroupns(hc) {
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}

	res, err := resources(hc)
	if err != nil {
		return nil, err
	}
	spec.Linux.Resources = res
	if err := confine(spec, hc); err != nil {
		return nil, err
	}
	if hc.Init != nil && *hc.Init {
		if err := withInit(spec); err != nil {
			return nil, err
		}
	}

	lc, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: rec.ID, Spec: spec, NoPivotRoot: rootIsRamfs()})
	if err != nil {
		return nil, errdefs.InvalidArgument("container %s: %v", rec.ID, err)
	}
	return &runSpec{config: lc, process: proc, volumes: volNames}, nil
}

// privateCgroupns reports whether the container gets a cgroup namespace of
// its own: --cgroupns=private, or by default on cgroup v2, as dockerd.
func privateCgroupns(hc *ctr.HostConfig) bool {
	switch {
	case hc.CgroupnsMode.IsPrivate():
		return true
	case hc.CgroupnsMode.IsHost():
		return false
	}
	return cgroups.IsCgroup2UnifiedMode()
}

// applyHostDefaults fills what a create left unset with dockerd's defaults,
// so inspect shows the values the container runs with, as dockerd's does.
func applyHostDefaults(hc *ctr.HostConfig) {
	if hc.ShmSize == 0 {
		hc.ShmSize = defaultShmSize
	}
	if hc.IpcMode == "" {
		hc.IpcMode = ctr.IPCModePrivate
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = ctr.CgroupnsModeHost
		if cgroups.IsCgroup2UnifiedMode() {
			hc.CgroupnsMode = ctr.CgroupnsModePrivate
		}
	}
	if !hc.Privileged {
		if hc.MaskedPaths == nil {
			hc.MaskedPaths = slices.Clone(defaultMaskedPaths)
		}
		if hc.ReadonlyPaths == nil {
			hc.ReadonlyPaths = slices.Clone(defaultReadonlyPaths)
		}
	}
	if hc.OomKillDisable == nil {
		hc.OomKillDisable = new(bool)
	}
	if hc.Runtime == "" {
		hc.Runtime = defaultRuntime
	}
	if hc.LogConfig.Config == nil {
		hc.LogConfig.Config = map[string]string{}
	}
	// Without SELinux this changes nothing, but dockerd records it.
	if (hc.Privileged || hc.PidMode.IsHost() || hc.IpcMode.IsHost()) && !slices.Contains(hc.SecurityOpt, "label=disable") {
		hc.SecurityOpt = append(hc.SecurityOpt, "label=disable")
	}
}

// cgroupPath places the container under the engine's cgroup parent (or the
// one given with --cgroup-parent), e.g. /berth/<id>.
func cgroupPath(parent string, hc *ctr.HostConfig, id string) string {
	if hc.CgroupParent != "" {
		parent = hc.CgroupParent
	}
	if !strings.HasPrefix(parent, "/") {
		parent = "/" + parent
	}
	return filepath.Join(parent, id)
}

func defaultMounts(hc *ctr.HostConfig) []specs.Mount {
	shm := hc.ShmSize
	if shm <= 0 {
		shm = defaultShmSize
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if hc.Privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev"}
		cgOpts = []string{"nosuid", "noexec", "nodev"}
	}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	if !hc.IpcMode.IsNone() { // --ipc=none: no /dev/shm at all, as with dockerd
		mounts = append(mounts, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}})
	}
	return mounts
}

// etcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf in its state directory and bind-mounts them, as dockerd
// does. The network sandbox supplies the container's own address,
// host.docker.internal and the resolver configuration.
func (m *Manager) etcFiles(rec *record, dir string, sb *bnet.Sandbox, linkHosts []string) ([]specs.Mount, error) {
	hostname := rec.Config.Hostname
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	switch {
	case sb != nil && len(sb.HostsEntries) > 0:
		hosts += strings.Join(sb.HostsEntries, "\n") + "\n"
		if sb.Host || !strings.HasSuffix(sb.HostsEntries[0], "\t"+hostname) {
			hosts += "127.0.0.1\t" + hostname + "\n"
		}
	case !rec.HostConfig.NetworkMode.IsHost():
		hosts += "127.0.0.1\t" + hostname + "\n"
	}
	for _, h := range linkHosts { // --link
		hosts += h + "\n"
	}
	for _, h := range rec.HostConfig.ExtraHosts { // --add-host NAME:IP, checked at create
		name, ip, _ := strings.Cut(h, ":")
		if ip == "host-gateway" {
			if m.cfg.Networks == nil {
				return nil, errdefs.InvalidArgument("--add-host %s:host-gateway: this engine has no networks", name)
			}
			ip = m.cfg.Networks.HostGateway().String()
		}
		hosts += ip + "\t" + name + "\n"
	}
	files := map[string]string{"hostname": hostname + "\n", "hosts": hosts}
	names := []string{"hostname", "hosts"}
	if sb != nil {
		files["resolv.conf"] = string(sb.ResolvConf)
		names = append(names, "resolv.conf")
	}
	var mounts []specs.Mount
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			return nil, fmt.Errorf("write /etc/%s: %w", name, err)
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: p, Options: []string{"rbind", "rprivate"}})
	}
	if sb == nil && rec.HostConfig.NetworkMode.IsHost() {
		mounts = append(mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: "/etc/resolv.conf", Options: []string{"rbind", "rprivate", "ro"}})
	}
	return mounts, nil
}

func tmpfsMounts(tmpfs map[string]string) ([]specs.Mount, error) {
	var dests []string
	for d := range tmpfs {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	var out []specs.Mount
	for _, d := range dests {
		if !filepath.IsAbs(d) {
			return nil, errdefs.InvalidArgument("invalid tmpfs mount %q: destination must be an absolute path", d)
		}
		opts := []string{"nosuid", "nodev", "noexec"}
		if o := tmpfs[d]; o != "" {
			opts = append(opts, strings.Split(o, ",")...)
		}
		out = append(out, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	return out, nil
}

// capabilities applies --privileged, --cap-add and --cap-drop to Docker's
// default set, accepting names with or without the CAP_ prefix and "ALL".
func capabilities(hc *ctr.HostConfig) ([]string, error) {
	all := allCaps()
	if hc.Privileged {
		return all, nil
	}
	known, grantable := map[string]bool{}, map[string]bool{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = true
	}
	for _, c := range all {
		grantable[c] = true
	}
	norm := func(list []string) ([]string, bool, error) {
		var out []string
		hasAll := false
		for _, c := range list {
			u := strings.ToUpper(strings.TrimSpace(c))
			if u == "ALL" {
				hasAll = true
				continue
			}
			if !strings.HasPrefix(u, "CAP_") {
				u = "CAP_" + u
			}
			if !known[u] {
				return nil, false, errdefs.InvalidArgument("unknown capability: %q", c)
			}
			out = append(out, u)
		}
		return out, hasAll, nil
	}
	add, addAll, err := norm(hc.CapAdd)
	if err != nil {
		return nil, err
	}
	drop, dropAll, err := norm(hc.CapDrop)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	switch {
	case addAll:
		for _, c := range all {
			set[c] = true
		}
	case !dropAll:
		for _, c := range defaultCaps {
			set[c] = true
		}
	}
	if !addAll {
		for _, c := range add {
			set[c] = true
		}
	}
	for _, c := range drop {
		delete(set, c)
	}
	if dropAll && !addAll {
		set = map[string]bool{}
		for _, c := range add {
			set[c] = true
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		if !grantable[c] {
			return nil, errdefs.InvalidArgument("capability %s is not available: the engine itself does not have it", c)
		}
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

// allCaps is every capability the engine itself may hand out: those the
// kernel supports that are in the agent's bounding set (a container cannot
// get more than its engine has).
func allCaps() []string {
	list, err := capability.ListSupported()
	if err != nil {
		list = capability.ListKnown()
	}
	own, err := capability.NewPid2(0)
	if err == nil {
		err = own.Load()
	}
	out := make([]string, 0, len(list))
	for _, c := range list {
		if err == nil && !own.Get(capability.BOUNDING, c) {
			continue
		}
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

func hostDevices() ([]specs.LinuxDevice, error) {
	devs, err := devices.HostDevices()
	if err != nil {
		return nil, fmt.Errorf("list host devices: %w", err)
	}
	var out []specs.LinuxDevice
	for _, d := range devs {
		if d.Path == "/dev/console" || strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/ptmx" {
			continue // the container gets its own
		}
		mode := d.FileMode
		uid, gid := d.Uid, d.Gid
		out = append(out, specs.LinuxDevice{Path: d.Path, Type: string(d.Type), Major: d.Major, Minor: d.Minor, FileMode: &mode, UID: &uid, GID: &gid})
	}
	return out, nil
}

// resources maps the HostConfig's limits onto cgroup resources. specconv
// and libcontainer write them for cgroup v1 and v2 alike.
func resources(hc *ctr.HostConfig) (*specs.LinuxResources, error) {
	r := hc.Resources
	out := &specs.LinuxResources{}
	mem := &specs.LinuxMemory{}
	if r.Memory > 0 {
		mem.Limit = &r.Memory
		swap := r.MemorySwap
		if swap == 0 {
			swap = 2 * r.Memory // dockerd's default: as much swap as memory
		}
		mem.Swap = &swap
	} else if r.MemorySwap > 0 {
		return nil, errdefs.InvalidArgument("you should always set the memory limit when using the memory-swap limit, see usage")
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = &r.MemoryReservation
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness >= 0 {
		s := uint64(*r.MemorySwappiness)
		mem.Swappiness = &s
	}
	if r.OomKillDisable != nil {
		mem.DisableOOMKiller = r.OomKillDisable
	}
	if *mem != (specs.LinuxMemory{}) {
		out.Memory = mem
	}

	cpu := &specs.LinuxCPU{}
	if r.CPUShares > 0 {
		s := uint64(r.CPUShares)
		cpu.Shares = &s
	}
	if r.NanoCPUs > 0 && (r.CPUQuota > 0 || r.CPUPeriod > 0) {
		return nil, errdefs.InvalidArgument("conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 {
		period := uint64(cfsPeriod)
		quota := r.NanoCPUs * cfsPeriod / 1e9
		cpu.Period, cpu.Quota = &period, &quota
	}
	if r.CPUQuota > 0 {
		q := r.CPUQuota
		cpu.Quota = &q
	}
	if r.CPUPeriod > 0 {
		p := uint64(r.CPUPeriod)
		cpu.Period = &p
	}
	cpu.Cpus, cpu.Mems = r.CpusetCpus, r.CpusetMems
	if r.CPURealtimePeriod > 0 {
		p := uint64(r.CPURealtimePeriod)
		cpu.RealtimePeriod = &p
	}
	if r.CPURealtimeRuntime > 0 {
		rt := r.CPURealtimeRuntime
		cpu.RealtimeRuntime = &rt
	}
	if cpu.Shares != nil || cpu.Quota != nil || cpu.Period != nil || cpu.Cpus != "" || cpu.Mems != "" || cpu.RealtimePeriod != nil || cpu.RealtimeRuntime != nil {
		out.CPU = cpu
	}
	bio, err := blockIO(r)
	if err != nil {
		return nil, err
	}
	out.BlockIO = bio
	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		out.Pids = &specs.LinuxPids{Limit: r.PidsLimit}
	}
	return out, nil
}

// namespaces lists the namespaces a container gets besides its network's:
// its own mount namespace, and a UTS, IPC and PID namespace of its own
// (private, the default), none of its own (host: the engine's) or another
// running container's (container:NAME, for --pid and --ipc).
func (m *Manager) namespaces(hc *ctr.HostConfig) ([]specs.LinuxNamespace, error) {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	for _, x := range []struct {
		typ      specs.LinuxNamespaceType
		proc     string // its name in /proc/PID/ns
		host     bool
		joinName string // container:NAME
	}{
		{specs.UTSNamespace, "uts", hc.UTSMode.IsHost(), ""},
		{specs.IPCNamespace, "ipc", hc.IpcMode.IsHost(), hc.IpcMode.Container()},
		{specs.PIDNamespace, "pid", hc.PidMode.IsHost(), hc.PidMode.Container()},
	} {
		switch {
		case x.host:
		case x.joinName != "":
			pid, err := m.runningPid(x.joinName)
			if err != nil {
				return nil, fmt.Errorf("join the %s namespace of %s: %w", x.proc, x.joinName, err)
			}
			ns = append(ns, specs.LinuxNamespace{Type: x.typ, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, x.proc)})
		default:
			ns = append(ns, specs.LinuxNamespace{Type: x.typ})
		}
	}
	return ns, nil
}

// runningPid is the host PID of a running container's init.
func (m *Manager) runningPid(ref string) (int, error) {
	c, err := m.Get(ref)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run == nil || c.run.pid == 0 {
		return 0, errdefs.Conflict("container %s is not running", ref)
	}
	return c.run.pid, nil
}

// validateHostConfig rejects what the engine cannot honour, at create time,
// with the message dockerd gives where it has one.
func validateHostConfig(hc *ctr.HostConfig) error {
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() {
		return errdefs.InvalidArgument("conflicting options: cannot specify both --restart and --rm")
	}
	if err := ctr.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return errdefs.InvalidArgument("%v", err)
	}
	r := hc.Resources
	if r.Memory > 0 && r.Memory < 6<<20 {
		return errdefs.InvalidArgument("Minimum memory limit allowed is 6MB")
	}
	if r.MemorySwap > 0 && r.Memory > 0 && r.MemorySwap < r.Memory {
		return errdefs.InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.NanoCPUs < 0 {
		return errdefs.InvalidArgument("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", numCPU(), numCPU())
	}
	if r.NanoCPUs > int64(numCPU())*1e9 {
		return errdefs.InvalidArgument("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", numCPU(), numCPU())
	}
	if _, err := resources(hc); err != nil {
		return err
	}
	for _, h := range hc.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || name == "" {
			return errdefs.InvalidArgument("invalid extra host %q: want HOST:IP", h)
		}
		if ip != "host-gateway" && net.ParseIP(ip) == nil {
			return errdefs.InvalidArgument("invalid IP address in extra host %q", h)
		}
	}
	if !hc.PidMode.Valid() {
		return errdefs.InvalidArgument("invalid PID mode: %s", hc.PidMode)
	}
	if !hc.IpcMode.Valid() {
		return errdefs.InvalidArgument("invalid IPC mode: %s", hc.IpcMode)
	}
	if !hc.UTSMode.Valid() {
		return errdefs.InvalidArgument("invalid UTS mode: %s", hc.UTSMode)
	}
	if !hc.CgroupnsMode.Valid() {
		return errdefs.InvalidArgument("invalid cgroup namespace mode: %v", hc.CgroupnsMode)
	}
	if err := validateSecurity(hc); err != nil {
		return err
	}
	switch hc.LogConfig.Type {
	case "", "json-file":
		if _, err := parseLogOptions(hc.LogConfig); err != nil {
			return err
		}
	case "none":
	default:
		// dockerd's words (it looks for a logging plugin of that name),
		// then which drivers this engine has.
		return errdefs.InvalidArgument("error looking up logging plugin %s: plugin %q not found: the log drivers are json-file and none", hc.LogConfig.Type, hc.LogConfig.Type)
	}
	return nil
}

// rootIsRamfs reports whether the engine's own root is the initramfs
// (rootfs), as when berth-agent runs as the VM's PID 1 without switching
// root. pivot_root cannot move away from it, so containers are entered
// with move-mount and chroot instead, as dockerd does with DOCKER_RAMDISK.
var rootIsRamfs = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	root := ""
	for _, line := range strings.Split(string(b), "\n") {
		// "36 0 0:1 / / rw - rootfs rootfs rw": mount point is field 5,
		// the filesystem type follows the " - " separator.
		f := strings.Fields(line)
		if len(f) < 5 || f[4] != "/" {
			continue
		}
		if _, after, ok := strings.Cut(line, " - "); ok {
			root = strings.Fields(after)[0] // the last mount on / wins
		}
	}
	return root == "rootfs" || root == "ramfs"
})
