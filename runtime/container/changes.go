//go:build linux

package container

import (
	"path"

	ctr "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/snapshot"
)

// changeLister is the part of the rootfs store docker diff needs.
type changeLister interface {
	Changes(key string) ([]snapshot.Change, error)
}

// runtimeStubs are the empty mount points the runtime makes in a root that
// lacks them (dockerd makes them in an init layer, out of docker diff's
// sight); a stub directory is hidden only while nothing else is below it.
var (
	stubFileNames = map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true, "/sbin/docker-init": true}
	stubDirNames  = map[string]bool{"/etc": true, "/proc": true, "/sys": true, "/dev": true, "/sbin": true}
)

// Changes lists the changes of a container's root filesystem against its
// image (docker diff), as dockerd reports them.
func (m *Manager) Changes(ref string) ([]ctr.FilesystemChange, error) {
	c, err := m.Get(ref)
	if err != nil {
		return nil, err
	}
	cl, ok := m.cfg.RootFS.(changeLister)
	if !ok {
		return nil, errdefs.NotImplemented("this engine's root filesystems cannot list changes")
	}
	changes, err := cl.Changes(c.ID())
	if err != nil {
		return nil, err
	}
	// Directories that hold more than stubs stay.
	kept := map[string]bool{}
	for _, ch := range changes {
		if stubFileNames[ch.Path] && ch.Kind == snapshot.Added && ch.Empty {
			continue
		}
		if stubDirNames[ch.Path] {
			continue
		}
		for d := path.Dir(ch.Path); d != "/"; d = path.Dir(d) {
			kept[d] = true
		}
	}
	out := []ctr.FilesystemChange{}
	for _, ch := range changes {
		switch {
		case stubFileNames[ch.Path] && ch.Kind == snapshot.Added && ch.Empty:
			continue
		case stubDirNames[ch.Path] && ch.Kind == snapshot.Added && !kept[ch.Path]:
			continue
		case stubDirNames[ch.Path] && ch.Kind == snapshot.Modified && !kept[ch.Path]:
			// Modified only because a stub was made in it.
			continue
		}
		out = append(out, ctr.FilesystemChange{Path: ch.Path, Kind: ctr.ChangeType(ch.Kind)})
	}
	return out, nil
}
