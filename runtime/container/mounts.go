//go:build linux

package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/errdefs"
	bvol "github.com/berth-dev/berth/runtime/volume"
)

// Volumes keeps the volumes containers mount (runtime/volume's Store).
// Without one, volumes and bind mounts are refused.
type Volumes interface {
	Create(volume.CreateRequest) (volume.Volume, error)
	Get(name string) (volume.Volume, error)
	Path(name string) string
	Populate(name string, fill func(dst string) error) error
	Remove(name string, force bool) error
	// Mount and Unmount bracket a container's use of a volume (a volume
	// with mount options is mounted while used).
	Mount(name string) (string, error)
	Unmount(name string)
}

// mountPlan is one mount a create request asks for, before volumes exist.
type mountPlan struct {
	typ         mount.Type
	source      string // host path (bind), volume name ("" anonymous), none (tmpfs)
	dest        string
	rw          bool
	noCopy      bool
	propagation mount.Propagation
	mode        string // the -v mode string, as inspect shows it
	createBind  bool   // -v creates a missing host directory; --mount does not
}

// planMounts validates -v, --mount, --volumes-from and the image's VOLUMEs
// and returns the mounts to make, without side effects.
func (m *Manager) planMounts(cfg *ctr.Config, hc *ctr.HostConfig) ([]mountPlan, error) {
	var plans []mountPlan
	if (len(hc.Binds) > 0 || len(hc.Mounts) > 0 || len(hc.VolumesFrom) > 0 || len(cfg.Volumes) > 0) && m.cfg.Volumes == nil {
		return nil, errdefs.NotImplemented("volumes and bind mounts are not available on this engine")
	}
	for _, b := range hc.Binds {
		p, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if p.typ == mount.TypeBind && m.isHostSocket(p.source) {
			p.source, p.createBind = m.cfg.EngineSocket, false
		}
		plans = append(plans, p)
	}
	for _, mt := range hc.Mounts {
		if mt.Type == mount.TypeBind && m.isHostSocket(mt.Source) {
			mt.Source = m.cfg.EngineSocket
		}
		p, err := parseMount(mt)
		if err != nil {
			return nil, err
		}
		if p.typ == mount.TypeTmpfs {
			continue // made at start from HostConfig.Mounts
		}
		plans = append(plans, p)
	}
	for _, vf := range hc.VolumesFrom {
		ref, mode, _ := strings.Cut(vf, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return nil, errdefs.InvalidArgument("invalid mode for volumes-from: %s", mode)
		}
		other, err := m.Get(ref)
		if err != nil {
			return nil, err
		}
		for _, mp := range other.snapshot().Mounts {
			p := mountPlan{typ: mp.Type, source: mp.Source, dest: mp.Destination, rw: mp.RW, noCopy: true,
				propagation: mp.Propagation, mode: mp.Mode}
			if mp.Type == mount.TypeVolume {
				p.source = mp.Name
			}
			if mode != "" {
				p.rw = mode == "rw"
			}
			plans = append(plans, p)
		}
	}
	seen := map[string]bool{}
	for _, p := range plans {
		if seen[p.dest] {
			return nil, errdefs.InvalidArgument("Duplicate mount point: %s", p.dest)
		}
		seen[p.dest] = true
	}
	for _, mt := range hc.Mounts {
		if mt.Type == mount.TypeTmpfs {
			if seen[path.Clean(mt.Target)] {
				return nil, errdefs.InvalidArgument("Duplicate mount point: %s", mt.Target)
			}
			seen[path.Clean(mt.Target)] = true
		}
	}
	for _, d := range slices.Sorted(func(yield func(string) bool) {
		for d := range cfg.Volumes {
			if !yield(d) {
				return
			}
		}
	}) {
		d = path.Clean(d)
		if !path.IsAbs(d) {
			return nil, errdefs.InvalidArgument("invalid volume %q: the destination must be an absolute path", d)
		}
		if !seen[d] {
			plans = append(plans, mountPlan{typ: mount.TypeVolume, dest: d, rw: true})
			seen[d] = true
		}
	}
	return plans, nil
}

// isHostSocket reports whether a bind mount's source names the engine's
// socket as the host sees it (--host-socket-path): the host's socket file
// is useless in the VM (a dead file over the share, or nothing), so the
// container gets the engine's own socket there, as Docker Desktop does.
func (m *Manager) isHostSocket(source string) bool {
	if m.cfg.EngineSocket == "" || !path.IsAbs(source) {
		return false
	}
	return slices.Contains(m.cfg.HostSockets, filepath.Clean(source))
}

// parseBind reads a -v SOURCE:DEST[:OPTIONS] with SOURCE a host path or a
// volume name.
func parseBind(spec string) (mountPlan, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return mountPlan{}, errdefs.InvalidArgument("invalid volume specification: '%s'", spec)
	}
	p := mountPlan{typ: mount.TypeVolume, source: parts[0], dest: path.Clean(parts[1]), rw: true}
	if path.IsAbs(parts[0]) {
		p.typ, p.source, p.createBind = mount.TypeBind, filepath.Clean(parts[0]), true
	}
	if !path.IsAbs(p.dest) {
		return mountPlan{}, errdefs.InvalidArgument("invalid volume specification: '%s': invalid mount config: mount path must be absolute", spec)
	}
	if p.dest == "/" {
		return mountPlan{}, errdefs.InvalidArgument("invalid volume specification: '%s': invalid mount config: destination can't be '/'", spec)
	}
	if len(parts) == 3 {
		p.mode = parts[2]
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				p.rw = false
			case "rw":
				p.rw = true
			case "nocopy":
				p.noCopy = true
			case "z", "Z", "consistent", "cached", "delegated":
			case "rprivate", "private", "rshared", "shared", "rslave", "slave":
				p.propagation = mount.Propagation(o)
			default:
				return mountPlan{}, errdefs.InvalidArgument("invalid mode: %s", parts[2])
			}
		}
	}
	if p.typ == mount.TypeVolume && p.propagation != "" {
		return mountPlan{}, errdefs.InvalidArgument("invalid volume specification: '%s': propagation applies to bind mounts only", spec)
	}
	return p, nil
}

// parseMount reads a --mount.
func parseMount(mt mount.Mount) (mountPlan, error) {
	dest := path.Clean(mt.Target)
	if mt.Target == "" {
		return mountPlan{}, errdefs.InvalidArgument("invalid mount config: Target must not be empty")
	}
	if !path.IsAbs(dest) {
		return mountPlan{}, errdefs.InvalidArgument("invalid mount config for type %q: mount path must be absolute", mt.Type)
	}
	p := mountPlan{typ: mt.Type, source: mt.Source, dest: dest, rw: !mt.ReadOnly}
	switch mt.Type {
	case mount.TypeBind:
		if mt.Source == "" {
			return mountPlan{}, errdefs.InvalidArgument("invalid mount config for type \"bind\": field Source must not be empty")
		}
		if !filepath.IsAbs(mt.Source) {
			return mountPlan{}, errdefs.InvalidArgument("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", mt.Source)
		}
		p.source = filepath.Clean(mt.Source)
		if mt.BindOptions != nil {
			p.propagation = mt.BindOptions.Propagation
			p.createBind = mt.BindOptions.CreateMountpoint
		}
		if _, err := os.Stat(p.source); err != nil && !p.createBind {
			return mountPlan{}, errdefs.InvalidArgument("invalid mount config for type \"bind\": bind source path does not exist: %s", p.source)
		}
	case mount.TypeVolume:
		if mt.VolumeOptions != nil {
			if mt.VolumeOptions.Subpath != "" || mt.VolumeOptions.DriverConfig != nil {
				return mountPlan{}, errdefs.NotImplemented("volume subpaths and driver configs are not supported")
			}
			p.noCopy = mt.VolumeOptions.NoCopy
		}
	case mount.TypeTmpfs:
		if mt.Source != "" {
			return mountPlan{}, errdefs.InvalidArgument("invalid mount config for type \"tmpfs\": field Source must not be specified")
		}
	default:
		return mountPlan{}, errdefs.InvalidArgument("mount type %q is not supported", mt.Type)
	}
	return p, nil
}

// createMounts makes what the plans need: volumes (named ones created if
// missing, anonymous ones new) filled with the image's content at their
// destination, and missing -v host directories. rootfs is the container's
// mounted root. On error the anonymous volumes made so far are removed.
func (m *Manager) createMounts(plans []mountPlan, rootfs string) (mps []ctr.MountPoint, err error) {
	var anon []string
	defer func() {
		if err != nil {
			for _, name := range anon {
				m.cfg.Volumes.Remove(name, true)
			}
		}
	}()
	for _, p := range plans {
		mp := ctr.MountPoint{Type: p.typ, Destination: p.dest, RW: p.rw, Mode: p.mode, Propagation: p.propagation}
		switch p.typ {
		case mount.TypeBind:
			// A missing -v source becomes a directory; one that exists,
			// a file included (-v /run/docker.sock:…), is used as it is.
			if _, serr := os.Stat(p.source); p.createBind && errors.Is(serr, fs.ErrNotExist) {
				if err := os.MkdirAll(p.source, 0o755); err != nil {
					return nil, errdefs.InvalidArgument("error while creating mount source path '%s': %v", p.source, err)
				}
			}
			mp.Source = p.source
			if mp.Propagation == "" {
				mp.Propagation = mount.PropagationRPrivate
			}
		case mount.TypeVolume:
			v, err := m.cfg.Volumes.Create(volume.CreateRequest{Name: p.source})
			if err != nil {
				return nil, err
			}
			if p.source == "" {
				anon = append(anon, v.Name)
			}
			if p.noCopy {
				err = m.cfg.Volumes.Populate(v.Name, nil)
			} else {
				err = m.cfg.Volumes.Populate(v.Name, func(dst string) error { return copyImagePath(rootfs, p.dest, dst) })
			}
			if err != nil {
				return nil, err
			}
			mp.Name, mp.Source, mp.Driver = v.Name, v.Mountpoint, "local"
			if mp.Mode == "" {
				mp.Mode = "z"
			}
		}
		mps = append(mps, mp)
	}
	return mps, nil
}

// copyImagePath copies the image's content at dest (resolved inside rootfs,
// never through a symlink out of it) into a new volume.
func copyImagePath(rootfs, dest, dst string) error {
	src, err := securejoin.SecureJoin(rootfs, dest)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil || !fi.IsDir() {
		return nil // nothing there (or a file): the volume starts empty
	}
	return bvol.CopyTree(src, dst)
}

// mountSpecs are the OCI mounts for a container's volumes, bind mounts and
// --mount tmpfs, parents before children.
// mountSpecs are the container's volume, bind and tmpfs mounts; the
// volumes it returns were mounted for it (Unmount them when it stops).
func (m *Manager) mountSpecs(rec *record) (out []specs.Mount, vols []string, err error) {
	defer func() {
		if err != nil {
			for _, v := range vols {
				m.cfg.Volumes.Unmount(v)
			}
			vols = nil
		}
	}()
	for _, mp := range rec.Mounts {
		src := mp.Source
		if mp.Type == mount.TypeVolume {
			if src, err = m.cfg.Volumes.Mount(mp.Name); err != nil {
				return nil, vols, err
			}
			vols = append(vols, mp.Name)
		} else if _, err := os.Stat(src); err != nil {
			return nil, vols, errdefs.InvalidArgument("invalid mount config for type \"bind\": bind source path does not exist: %s", src)
		}
		opts := []string{"rbind"}
		prop := string(mp.Propagation)
		if prop == "" {
			prop = string(mount.PropagationRPrivate)
		}
		opts = append(opts, prop)
		if !mp.RW {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: mp.Destination, Type: "bind", Source: src, Options: opts})
	}
	for _, mt := range rec.HostConfig.Mounts {
		if mt.Type != mount.TypeTmpfs {
			continue
		}
		opts := []string{"nosuid", "nodev", "noexec"}
		if t := mt.TmpfsOptions; t != nil {
			if t.SizeBytes > 0 {
				opts = append(opts, "size="+strconv.FormatInt(t.SizeBytes, 10))
			}
			if t.Mode != 0 {
				opts = append(opts, fmt.Sprintf("mode=%o", t.Mode.Perm()))
			}
		}
		if mt.ReadOnly {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: path.Clean(mt.Target), Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	slices.SortStableFunc(out, func(a, b specs.Mount) int {
		return strings.Count(path.Clean(a.Destination), "/") - strings.Count(path.Clean(b.Destination), "/")
	})
	return out, vols, nil
}

// VolumeUsers returns the IDs of the containers (running or not) that
// mount the volume name.
func (m *Manager) VolumeUsers(name string) []string {
	var out []string
	for _, c := range m.All() {
		for _, mp := range c.snapshot().Mounts {
			if mp.Type == mount.TypeVolume && mp.Name == name {
				out = append(out, c.ID())
				break
			}
		}
	}
	return out
}

// removeAnonymousVolumes deletes the anonymous volumes of a removed
// container (docker rm -v, and --rm containers).
func (m *Manager) removeAnonymousVolumes(mps []ctr.MountPoint) {
	for _, mp := range mps {
		if mp.Type != mount.TypeVolume {
			continue
		}
		v, err := m.cfg.Volumes.Get(mp.Name)
		if err != nil {
			continue
		}
		if _, anon := v.Labels[bvol.AnonymousLabel]; !anon {
			continue
		}
		if err := m.cfg.Volumes.Remove(mp.Name, true); err != nil && !errdefs.IsConflict(err) {
			m.log.Warn("remove anonymous volume", "volume", mp.Name, "err", err)
		}
	}
}
