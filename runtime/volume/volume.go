//go:build linux

// Package volume keeps named and anonymous volumes: directories under the
// engine's root that containers mount, which outlive the containers. The
// layout is dockerd's local driver's: ROOT/volumes/<name>/_data, with the
// volume's metadata beside it in meta.json.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/runtime/errdefs"
	evbus "github.com/berth-dev/berth/runtime/events"
	"github.com/berth-dev/berth/runtime/filters"
	"github.com/berth-dev/berth/runtime/fsutil"
)

// AnonymousLabel marks volumes made for a container's VOLUME or -v /path
// (dockerd's label, so `volume prune` and the CLI treat them alike).
const AnonymousLabel = "com.docker.volume.anonymous"

// meta is what is kept about a volume beside its data.
type meta struct {
	CreatedAt time.Time
	Labels    map[string]string
	Options   map[string]string
	// Populated is set once image content was copied in (or the volume was
	// first mounted with nocopy): an emptied volume is not filled again.
	Populated bool
}

// Store holds the volumes under one root.
type Store struct {
	root   string
	events *evbus.Bus
	log    *slog.Logger
	inUse  func(name string) []string // IDs of containers using a volume

	mu      sync.Mutex
	vols    map[string]*meta
	mounted map[string]int // volumes with mount options: their users
}

// New opens the volume store at root (ROOT/volumes).
func New(root string, bus *evbus.Bus, log *slog.Logger) (*Store, error) {
	if bus == nil {
		bus = evbus.New()
	}
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	s := &Store{root: root, events: bus, log: log, vols: map[string]*meta{}, mounted: map[string]int{}}
	unmountLeftovers(root)
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if strings.HasPrefix(e.Name(), ".removed-") {
			os.RemoveAll(filepath.Join(root, e.Name())) // a removal a crash interrupted
			continue
		}
		var m meta
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "meta.json"))
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			log.Error("skipping unreadable volume", "volume", e.Name(), "err", err)
			continue
		}
		s.vols[e.Name()] = &m
	}
	return s, nil
}

// SetInUse tells the store how to find the containers using a volume, so
// that one in use is not removed.
func (s *Store) SetInUse(f func(name string) []string) { s.inUse = f }

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// NewAnonymousName is a name for an anonymous volume (64 hex digits).
func NewAnonymousName() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Create makes a volume, or returns the existing one of that name (as
// dockerd does). An empty name makes an anonymous volume.
func (s *Store) Create(req volume.CreateRequest) (volume.Volume, error) {
	switch req.Driver {
	case "", "local":
	default:
		return volume.Volume{}, errdefs.NotFound("plugin %q not found: only the local volume driver is available", req.Driver)
	}
	if err := checkOptions(req.DriverOpts); err != nil {
		return volume.Volume{}, err
	}
	name := req.Name
	labels := maps.Clone(req.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if name == "" {
		name = NewAnonymousName()
		labels[AnonymousLabel] = ""
	} else if !validName.MatchString(name) {
		return volume.Volume{}, errdefs.InvalidArgument("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.vols[name]; ok {
		// Reported again, as dockerd reports every create of a volume,
		// one that exists too (a container naming it does one).
		s.events.Publish(events.VolumeEventType, events.ActionCreate, name, map[string]string{"driver": "local"})
		return s.describe(name, m), nil
	}
	opts := maps.Clone(req.DriverOpts)
	if opts == nil {
		opts = map[string]string{}
	}
	// A volume with mount options is a mount, not a directory to fill.
	m := &meta{CreatedAt: time.Now().UTC().Truncate(time.Second), Labels: labels, Options: opts, Populated: opts["device"] != ""}
	dir := filepath.Join(s.root, name)
	if err := os.MkdirAll(filepath.Join(dir, "_data"), 0o755); err != nil {
		return volume.Volume{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := s.save(name, m); err != nil {
		os.RemoveAll(dir)
		return volume.Volume{}, err
	}
	s.vols[name] = m
	s.events.Publish(events.VolumeEventType, events.ActionCreate, name, map[string]string{"driver": "local"})
	return s.describe(name, m), nil
}

func (s *Store) save(name string, m *meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(s.root, name, "meta.json"), b, 0o600); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return nil
}

func (s *Store) describe(name string, m *meta) volume.Volume {
	return volume.Volume{
		Name: name, Driver: "local", Scope: "local", Mountpoint: s.Path(name),
		CreatedAt: m.CreatedAt.Format(time.RFC3339), Labels: maps.Clone(m.Labels), Options: maps.Clone(m.Options),
	}
}

// Path is where a volume's data lives (its mount source).
func (s *Store) Path(name string) string { return filepath.Join(s.root, name, "_data") }

// Get reports one volume.
func (s *Store) Get(name string) (volume.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.vols[name]
	if !ok {
		return volume.Volume{}, errdefs.NotFound("get %s: no such volume", name)
	}
	return s.describe(name, m), nil
}

// Populate runs fill once in the volume's life, the first time it is
// mounted where the image has content: dockerd copies that content in
// unless the volume was used before (or nocopy was asked).
func (s *Store) Populate(name string, fill func(dst string) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.vols[name]
	if !ok {
		return errdefs.NotFound("get %s: no such volume", name)
	}
	if m.Populated {
		return nil
	}
	if fill != nil {
		empty, err := isEmptyDir(s.Path(name))
		if err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
		if empty {
			if err := fill(s.Path(name)); err != nil {
				return fmt.Errorf("volume %s: copy image content: %w", name, err)
			}
		}
	}
	m.Populated = true
	return s.save(name, m)
}

func isEmptyDir(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0, nilIfEOF(err)
}

func nilIfEOF(err error) error {
	if err != nil && err.Error() == "EOF" {
		return nil
	}
	return err
}

var listFilters = []string{"dangling", "driver", "label", "name"}

// List reports volumes, filtered as GET /volumes does.
func (s *Store) List(f filters.Args) ([]volume.Volume, error) {
	if err := f.Validate(listFilters...); err != nil {
		return nil, err
	}
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.vols))
	s.mu.Unlock()
	out := []volume.Volume{}
	for _, name := range names {
		v, err := s.Get(name)
		if err != nil {
			continue // removed meanwhile
		}
		switch {
		case f.Has("name") && !slices.ContainsFunc(f.Get("name"), func(w string) bool { return strings.Contains(name, w) }):
			continue
		case !f.Match("driver", "local"):
			continue
		case !f.MatchLabels("label", v.Labels):
			continue
		}
		if f.Has("dangling") {
			dangling := len(s.users(name)) == 0
			if !(f.Match("dangling", "true") && dangling || f.Match("dangling", "1") && dangling ||
				f.Match("dangling", "false") && !dangling || f.Match("dangling", "0") && !dangling) {
				continue
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Store) users(name string) []string {
	if s.inUse == nil {
		return nil
	}
	return s.inUse(name)
}

// Remove deletes a volume no container uses (force only silences a
// missing volume, as dockerd's).
func (s *Store) Remove(name string, force bool) error {
	if users := s.users(name); len(users) > 0 {
		return errdefs.Conflict("remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vols[name]; !ok {
		if force {
			return nil
		}
		return errdefs.NotFound("get %s: no such volume", name)
	}
	// Renamed away first, so a crash never leaves half a volume that
	// looks whole; deleted after.
	trash := filepath.Join(s.root, ".removed-"+name)
	if err := os.Rename(filepath.Join(s.root, name), trash); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	delete(s.vols, name)
	if err := os.RemoveAll(trash); err != nil {
		s.log.Warn("delete removed volume", "volume", name, "err", err)
	}
	s.events.Publish(events.VolumeEventType, events.ActionDestroy, name, map[string]string{"driver": "local"})
	return nil
}

// Prune removes unused volumes: anonymous ones only, unless the filter
// all=true is given (dockerd's rule since API 1.42); label filters apply.
func (s *Store) Prune(f filters.Args) (volume.PruneReport, error) {
	if err := f.Validate("label", "label!", "all"); err != nil {
		return volume.PruneReport{}, err
	}
	all := f.Has("all") && (f.Match("all", "true") || f.Match("all", "1"))
	rep := volume.PruneReport{VolumesDeleted: []string{}}
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.vols))
	s.mu.Unlock()
	for _, name := range names {
		v, err := s.Get(name)
		if err != nil {
			continue
		}
		_, anon := v.Labels[AnonymousLabel]
		if (!all && !anon) || !f.MatchLabels("label", v.Labels) || (f.Has("label!") && f.MatchLabels("label!", v.Labels)) {
			continue
		}
		size, _ := DirSize(s.Path(name))
		if err := s.Remove(name, false); err != nil {
			continue // in use
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, name)
		rep.SpaceReclaimed += uint64(size)
	}
	s.events.Publish(events.VolumeEventType, events.ActionPrune, "", map[string]string{"reclaimed": fmt.Sprint(rep.SpaceReclaimed)})
	return rep, nil
}

// Usage reports each volume with its size and how many containers use it
// (for `docker system df -v`).
func (s *Store) Usage() []volume.Volume {
	list, _ := s.List(filters.Args{})
	for i := range list {
		size, err := DirSize(list[i].Mountpoint)
		if err != nil {
			size = -1
		}
		list[i].UsageData = &volume.UsageData{Size: size, RefCount: int64(len(s.users(list[i].Name)))}
	}
	return list
}

// DirSize is the disk space the files under dir take, hard links counted once.
func DirSize(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if ino, nlink, ok := inode(info); ok && nlink > 1 {
			if seen[ino] {
				return nil
			}
			seen[ino] = true
		}
		if !d.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return total, err
}
