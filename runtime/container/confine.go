//go:build linux

package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ctr "github.com/moby/moby/api/types/container"
	profiles "github.com/moby/profiles/seccomp"
	"github.com/moby/sys/devices"
	runcseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// SeccompEnabled reports whether this binary applies seccomp filters
// (runc's seccomp support is compiled in only with the `seccomp` build tag
// and cgo; `make build` and `make test-go` set it).
const SeccompEnabled = runcseccomp.Enabled

// Seccomp profile names in --security-opt seccomp=…, as dockerd has them.
const (
	seccompBuiltin    = "builtin"
	seccompUnconfined = "unconfined"
)

// securityOpts is HostConfig.SecurityOpt parsed.
type securityOpts struct {
	noNewPrivileges bool
	seccomp         string // "" or "builtin": the default profile; "unconfined"; else a JSON profile
}

// parseSecurityOpts reads --security-opt values as dockerd does (KEY=VALUE,
// or the old KEY:VALUE). What this engine cannot honour is refused by name:
// there is no AppArmor or SELinux in the VM, so only the options asking for
// no LSM confinement (apparmor=unconfined, label=disable) are accepted, and
// they are what happens.
func parseSecurityOpts(list []string) (securityOpts, error) {
	var o securityOpts
	for _, opt := range list {
		if opt == "no-new-privileges" {
			o.noNewPrivileges = true
			continue
		}
		if opt == "disable" { // the CLI's shorthand for label=disable
			continue
		}
		sep := "="
		if !strings.Contains(opt, "=") {
			sep = ":"
		}
		k, v, ok := strings.Cut(opt, sep)
		if !ok {
			return o, errdefs.InvalidArgument("invalid --security-opt 1: %q", opt)
		}
		switch k {
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, errdefs.InvalidArgument("invalid --security-opt 2: %q", opt)
			}
			o.noNewPrivileges = b
		case "seccomp":
			if v == "" {
				return o, errdefs.InvalidArgument("invalid --security-opt seccomp: no profile given")
			}
			o.seccomp = v
		case "apparmor":
			if v != "unconfined" {
				return o, errdefs.InvalidArgument("--security-opt apparmor=%s is not supported: this engine has no AppArmor (only apparmor=unconfined is accepted)", v)
			}
		case "label":
			if v != "disable" {
				return o, errdefs.InvalidArgument("--security-opt label=%s is not supported: this engine has no SELinux (only label=disable is accepted)", v)
			}
		case "systempaths":
			// The CLI turns systempaths=unconfined into empty masked and
			// read-only path lists; the option itself reaches us only from
			// other clients.
			if v != "unconfined" {
				return o, errdefs.InvalidArgument("invalid --security-opt 2: %q", opt)
			}
		default:
			return o, errdefs.InvalidArgument("invalid --security-opt 2: %q (supported: no-new-privileges, seccomp=unconfined|builtin|PROFILE, apparmor=unconfined, label=disable)", opt)
		}
	}
	return o, nil
}

// confine applies the engine's default confinement to spec, as dockerd does
// for `docker run`, adjusted by hc: capabilities, masked and read-only
// /proc and /sys paths, the device list and device cgroup rules, the
// seccomp filter and no-new-privileges. spec.Process and spec.Linux must be
// set. A build step's spec (from BuildKit) goes through the same function
// with an empty HostConfig, so it gets what a plain `docker run` gets.
func confine(spec *specs.Spec, hc *ctr.HostConfig) error {
	opts, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return err
	}
	caps, err := capabilities(hc)
	if err != nil {
		return err
	}
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	spec.Process.NoNewPrivileges = opts.noNewPrivileges

	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	res := spec.Linux.Resources
	if hc.Privileged {
		devs, err := hostDevices()
		if err != nil {
			return err
		}
		spec.Linux.Devices = devs
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths = nil, nil
	} else {
		// Deny everything; libcontainer appends the default devices
		// (null, zero, full, random, urandom, tty, ptmx…) after these.
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
		spec.Linux.Devices = nil
		spec.Linux.MaskedPaths = defaultMaskedPaths
		spec.Linux.ReadonlyPaths = defaultReadonlyPaths
		if hc.MaskedPaths != nil {
			spec.Linux.MaskedPaths = hc.MaskedPaths
		}
		if hc.ReadonlyPaths != nil {
			spec.Linux.ReadonlyPaths = hc.ReadonlyPaths
		}
	}
	devs, rules, err := deviceMappings(hc.Devices)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, d := range spec.Linux.Devices {
		have[d.Path] = true
	}
	for _, d := range devs {
		if !have[d.Path] { // --privileged already has every host device
			spec.Linux.Devices = append(spec.Linux.Devices, d)
			have[d.Path] = true
		}
	}
	if !hc.Privileged {
		res.Devices = append(res.Devices, rules...)
		for _, r := range hc.DeviceCgroupRules {
			rule, err := parseDeviceCgroupRule(r)
			if err != nil {
				return err
			}
			res.Devices = append(res.Devices, rule)
		}
	}

	spec.Linux.Seccomp = nil
	if hc.Privileged || opts.seccomp == seccompUnconfined {
		return nil // as dockerd: --privileged is never filtered
	}
	if !SeccompEnabled {
		if opts.seccomp != "" && opts.seccomp != seccompBuiltin {
			return errdefs.InvalidArgument("--security-opt seccomp: this engine was built without seccomp support")
		}
		return nil // a test binary built without the tag; the agent refuses to start so
	}
	spec.Linux.Seccomp, err = seccompProfile(opts.seccomp, spec)
	return err
}

// seccompProfile is the filter for --security-opt seccomp=NAME: dockerd's
// default profile (from github.com/moby/profiles), or the JSON profile the
// client sent (the docker CLI sends the file's content).
func seccompProfile(name string, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	if name == "" || name == seccompBuiltin {
		p, err := profiles.GetDefaultProfile(spec)
		if err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
		p.Architectures = withoutX32(p.Architectures)
		return p, nil
	}
	if !json.Valid([]byte(name)) {
		return nil, errdefs.InvalidArgument("--security-opt seccomp=%.40q: not a profile name (builtin, unconfined) nor a JSON profile", name)
	}
	p, err := profiles.LoadProfile(name, spec)
	if err != nil {
		return nil, errdefs.InvalidArgument("--security-opt seccomp: %v", err)
	}
	if p == nil {
		return nil, errdefs.InvalidArgument("--security-opt seccomp: the profile has no defaultAction and no syscalls (use seccomp=unconfined to run without a filter)")
	}
	// A user notification listener would make the engine connect to a
	// socket path the profile names and hand it the container's filter.
	if p.ListenerPath != "" || p.DefaultAction == specs.ActNotify {
		return nil, errdefs.InvalidArgument("--security-opt seccomp: user notification (listenerPath, SCMP_ACT_NOTIFY) is not supported")
	}
	for _, s := range p.Syscalls {
		if s.Action == specs.ActNotify {
			return nil, errdefs.InvalidArgument("--security-opt seccomp: user notification (SCMP_ACT_NOTIFY) is not supported")
		}
	}
	// Actions, operators, architectures and flags as libcontainer reads them.
	if _, err := specconv.SetupSeccomp(p); err != nil {
		return nil, errdefs.InvalidArgument("--security-opt seccomp: %v", err)
	}
	return p, nil
}

// withoutX32 drops the x32 ABI from the default profile's architectures
// (dockerd's lists it on amd64): libseccomp compiles x32 rules into the
// x86-64 filter with a check of each syscall number, which made every
// container start 20 ms slower natively (and far more under emulation),
// for an ABI no image uses and Debian's kernels do not enable. x32 calls
// then meet the filter's bad-architecture action: refused, as they would
// be by the kernel. 64- and 32-bit x86 are filtered as with dockerd.
func withoutX32(arches []specs.Arch) []specs.Arch {
	out := arches[:0]
	for _, a := range arches {
		if a != specs.ArchX32 {
			out = append(out, a)
		}
	}
	return out
}

// deviceMappings turns --device HOST[:CONTAINER[:PERMS]] into devices and
// the cgroup rules that allow them. A directory adds every device under
// it, as dockerd does.
func deviceMappings(list []ctr.DeviceMapping) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for _, d := range list {
		perms := d.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if !validDeviceAccess(perms) {
			return nil, nil, errdefs.InvalidArgument("--device %s: invalid permissions %q (a combination of r, w and m)", d.PathOnHost, perms)
		}
		if !filepath.IsAbs(d.PathOnHost) {
			return nil, nil, errdefs.InvalidArgument("--device %s: the host path must be absolute", d.PathOnHost)
		}
		dest := d.PathInContainer
		if dest == "" {
			dest = d.PathOnHost
		}
		if !filepath.IsAbs(dest) {
			return nil, nil, errdefs.InvalidArgument("--device %s: the container path %q must be absolute", d.PathOnHost, dest)
		}
		add := func(hostPath, ctrPath string) error {
			dev, err := devices.DeviceFromPath(hostPath, perms)
			if err != nil {
				return errdefs.InvalidArgument("--device %s: %v", hostPath, err)
			}
			mode, uid, gid := dev.FileMode, dev.Uid, dev.Gid
			devs = append(devs, specs.LinuxDevice{Path: ctrPath, Type: string(dev.Type), Major: dev.Major, Minor: dev.Minor, FileMode: &mode, UID: &uid, GID: &gid})
			major, minor := dev.Major, dev.Minor
			rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: string(dev.Type), Major: &major, Minor: &minor, Access: perms})
			return nil
		}
		st, err := os.Stat(d.PathOnHost)
		if err != nil {
			return nil, nil, errdefs.InvalidArgument("--device %s: error gathering device information: %v", d.PathOnHost, err)
		}
		if !st.IsDir() {
			if err := add(d.PathOnHost, dest); err != nil {
				return nil, nil, err
			}
			continue
		}
		found, err := devices.GetDevices(d.PathOnHost)
		if err != nil {
			return nil, nil, errdefs.InvalidArgument("--device %s: %v", d.PathOnHost, err)
		}
		for _, f := range found {
			rel, err := filepath.Rel(d.PathOnHost, f.Path)
			if err != nil {
				return nil, nil, err
			}
			if err := add(f.Path, filepath.Join(dest, rel)); err != nil {
				return nil, nil, err
			}
		}
	}
	return devs, rules, nil
}

func validDeviceAccess(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c != 'r' && c != 'w' && c != 'm' || strings.Count(s, string(c)) > 1 {
			return false
		}
	}
	return true
}

// parseDeviceCgroupRule reads a --device-cgroup-rule: "TYPE MAJOR:MINOR
// ACCESS", TYPE one of a, b, c; MAJOR and MINOR numbers or *.
func parseDeviceCgroupRule(s string) (specs.LinuxDeviceCgroup, error) {
	bad := errdefs.InvalidArgument("invalid --device-cgroup-rule %q: want TYPE MAJOR:MINOR ACCESS, e.g. 'c 1:3 rwm'", s)
	f := strings.Fields(s)
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("abc", f[0]) || !validDeviceAccess(f[2]) {
		return specs.LinuxDeviceCgroup{}, bad
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	num := func(s string) (*int64, bool) {
		if s == "*" {
			return nil, true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, false
		}
		return &n, true
	}
	major, ok1 := num(maj)
	minor, ok2 := num(min)
	if !ok1 || !ok2 {
		return specs.LinuxDeviceCgroup{}, bad
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Major: major, Minor: minor, Access: f[2]}, nil
}

// validateSecurity refuses, at create, the host options this engine cannot
// honour, by name, and checks those it honours (a bad seccomp profile or
// device fails the create, not the start).
func validateSecurity(hc *ctr.HostConfig) error {
	switch hc.Runtime {
	case "", "runc":
	default:
		return errdefs.InvalidArgument("--runtime %s is not supported: this engine runs containers with its own runc (libcontainer); use the default runtime", hc.Runtime)
	}
	if m := hc.UsernsMode; m != "" && !m.IsHost() {
		return errdefs.InvalidArgument("--userns=%s is not supported: containers share the engine's user namespace (use --userns=host or leave it out)", m)
	}
	if len(hc.DeviceRequests) > 0 {
		return errdefs.InvalidArgument("--gpus and device requests are not supported: the engine's VM has no GPU passthrough")
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return errdefs.InvalidArgument("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	if hc.Isolation != "" && !hc.Isolation.IsDefault() {
		return errdefs.InvalidArgument("--isolation=%s is not supported on Linux", hc.Isolation)
	}
	// The whole confinement, on a scratch spec: everything but the
	// container's own mounts and process is checked here.
	spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	return confine(spec, hc)
}
