//go:build linux

package container

import (
	ctr "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// CheckCreate runs every check of a create request that needs no image and
// no running engine state: the host config's validation, the health check,
// and the OCI spec a start would build, as far as it can be built without a
// root filesystem, converted by libcontainer. Create runs it, so a request
// the start would refuse fails at create; the API's fuzz test drives it.
func CheckCreate(cfg *ctr.Config, hc *ctr.HostConfig) error {
	if cfg == nil {
		return errdefs.InvalidArgument("config cannot be empty in order to create a container")
	}
	if hc == nil {
		hc = &ctr.HostConfig{}
	}
	if err := validateHostConfig(hc); err != nil {
		return err
	}
	if err := validateHealthcheck(cfg.Healthcheck); err != nil {
		return err
	}
	return checkSpec(cfg, hc)
}

// checkSpec builds a start's spec for cfg and hc on a stand-in root and
// converts it, without creating anything.
func checkSpec(cfg *ctr.Config, hc *ctr.HostConfig) error {
	rl, err := ulimits(hc)
	if err != nil {
		return err
	}
	if _, err := rlimits(rl); err != nil {
		return err
	}
	spec := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: "/nonexistent/berth-check", Readonly: hc.ReadonlyRootfs},
		Hostname: cfg.Hostname,
		Process:  &specs.Process{Args: []string{"/check"}, Cwd: "/", Terminal: cfg.Tty, Rlimits: rl},
		Mounts:   defaultMounts(hc),
		Linux:    &specs.Linux{CgroupsPath: cgroupPath("/berth", hc, "check"), Sysctl: hc.Sysctls},
	}
	if hc.UTSMode.IsHost() {
		spec.Hostname = ""
	}
	tmpfs, err := tmpfsMounts(hc.Tmpfs)
	if err != nil {
		return err
	}
	spec.Mounts = append(spec.Mounts, tmpfs...)
	spec.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	for typ, host := range map[specs.LinuxNamespaceType]bool{
		specs.UTSNamespace: hc.UTSMode.IsHost(), specs.IPCNamespace: hc.IpcMode.IsHost() || hc.IpcMode.IsContainer(),
		specs.PIDNamespace: hc.PidMode.IsHost() || hc.PidMode.IsContainer(), specs.NetworkNamespace: hc.NetworkMode.IsHost(),
	} {
		if !host { // a namespace joined at start is not known yet: left out
			spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: typ})
		}
	}
	if spec.Linux.Resources, err = resources(hc); err != nil {
		return err
	}
	if err := confine(spec, hc); err != nil {
		return err
	}
	if hc.Init != nil && *hc.Init {
		if err := withInit(spec); err != nil {
			return err
		}
	}
	if _, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: "check", Spec: spec, NoPivotRoot: true}); err != nil {
		return errdefs.InvalidArgument("%v", err)
	}
	return nil
}
