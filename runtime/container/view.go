//go:build linux

package container

import (
	"context"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/filters"
	bnet "github.com/berth-dev/berth/runtime/network"
)

// usager is implemented by root filesystem stores that can report the size
// of a container's writable layer.
type usager interface {
	Usage(key string) (int64, error)
}

// graphDataer is implemented by root filesystem stores that can name a
// container's overlay directories (inspect's GraphDriver.Data).
type graphDataer interface {
	GraphData(key string) (map[string]string, error)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Inspect reports a container as GET /containers/{id}/json does.
func (m *Manager) Inspect(ctx context.Context, ref string, size bool) (*ctr.InspectResponse, error) {
	c, err := m.Get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	rec := c.rec
	var sb *bnet.Sandbox
	if c.run != nil {
		sb = c.run.net
	}
	// Execs not yet ended: dockerd forgets a container's execs as they end.
	execIDs := make([]string, 0, len(c.execs))
	for _, e := range c.execsLocked() {
		e.mu.Lock()
		live := e.running || !e.started
		e.mu.Unlock()
		if live {
			execIDs = append(execIDs, e.ID)
		}
	}
	c.mu.Unlock()
	st := rec.State
	resp := &ctr.InspectResponse{
		ID:      rec.ID,
		Created: formatTime(rec.Created),
		Path:    rec.Path,
		Args:    nonNil(rec.Args),
		State: &ctr.State{
			Status: st.Status, Running: st.Running(),
			Paused: st.Status == ctr.StatePaused, Restarting: st.Status == ctr.StateRestarting,
			OOMKilled: st.OOMKilled, Dead: st.Status == ctr.StateDead, Pid: st.Pid, ExitCode: st.ExitCode,
			Error: st.Error, StartedAt: formatTime(st.StartedAt), FinishedAt: formatTime(st.FinishedAt),
			Health: st.Health,
		},
		Image:           rec.ImageID,
		HostnamePath:    filepath.Join(c.dir, "hostname"),
		HostsPath:       filepath.Join(c.dir, "hosts"),
		LogPath:         c.logPath(),
		Name:            "/" + rec.Name,
		RestartCount:    rec.RestartCount,
		Driver:          "overlay2",
		Platform:        rec.Platform,
		HostConfig:      rec.HostConfig,
		Config:          rec.Config,
		Mounts:          mountPoints(rec.Mounts, rec.HostConfig),
		GraphDriver:     &storage.DriverData{Name: "overlay2", Data: map[string]string{}},
		NetworkSettings: networkSettings(&rec, sb),
	}
	if rec.HostConfig.LogConfig.Type == "none" {
		resp.LogPath = ""
	}
	if g, ok := m.cfg.RootFS.(graphDataer); ok {
		if data, err := g.GraphData(rec.ID); err == nil {
			resp.GraphDriver.Data = data
		}
	}
	if len(execIDs) > 0 {
		resp.ExecIDs = execIDs
	}
	if size {
		rw, rootfs := m.sizes(ctx, rec)
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	return resp, nil
}

// DesiredMAC is the MAC address asked for on ref's main network (older
// API versions show it as Config.MacAddress), or "".
func (m *Manager) DesiredMAC(ref string) string {
	c, err := m.Get(ref)
	if err != nil {
		return ""
	}
	rec := c.snapshot()
	if rec.NetworkingConfig == nil || rec.HostConfig == nil {
		return ""
	}
	if ep := rec.NetworkingConfig.EndpointsConfig[string(rec.HostConfig.NetworkMode)]; ep != nil && len(ep.MacAddress) > 0 {
		return ep.MacAddress.String()
	}
	return ""
}

func (c *Container) execsLocked() []*Exec {
	out := slices.Collect(maps.Values(c.execs))
	slices.SortFunc(out, func(a, b *Exec) int { return a.seq - b.seq })
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (m *Manager) sizes(ctx context.Context, rec record) (rw, rootfs int64) {
	if u, ok := m.cfg.RootFS.(usager); ok {
		rw, _ = u.Usage(rec.ID)
	}
	rootfs = rw
	if img, err := m.cfg.Images(ctx, rec.ImageID); err == nil {
		rootfs += img.Size
	}
	return rw, rootfs
}

// StatusString is the Status column of docker ps: "Up 3 seconds",
// "Exited (0) 2 seconds ago", … as dockerd words it.
func StatusString(st State, now time.Time) string {
	switch st.Status {
	case ctr.StateRunning:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + healthString(st.Health)
	case ctr.StatePaused:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + " (Paused)"
	case ctr.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case ctr.StateRemoving:
		return "Removal In Progress"
	case ctr.StateDead:
		return "Dead"
	}
	if st.FinishedAt.IsZero() {
		return "Created"
	}
	return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
}

// ListOptions is a container list request.
type ListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters filters.Args
}

var listFilters = []string{"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
	"label", "name", "network", "publish", "since", "status", "volume"}

// List reports containers as GET /containers/json does, newest first.
func (m *Manager) List(ctx context.Context, opts ListOptions) ([]ctr.Summary, error) {
	f := opts.Filters
	if f == nil {
		f = filters.Args{}
	}
	if err := f.Validate(listFilters...); err != nil {
		return nil, err
	}
	for _, s := range f.Get("status") {
		if err := ctr.ValidateContainerState(ctr.ContainerState(s)); err != nil {
			return nil, errdefs.InvalidArgument("Invalid filter 'status=%s'", s)
		}
	}
	var exited []int
	for _, s := range f.Get("exited") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, errdefs.InvalidArgument("invalid filter 'exited=%s'", s)
		}
		exited = append(exited, n)
	}
	var nameRes []*regexp.Regexp
	for _, s := range f.Get("name") {
		re, err := regexp.Compile(s)
		if err != nil {
			re = regexp.MustCompile(regexp.QuoteMeta(s))
		}
		nameRes = append(nameRes, re)
	}
	ancestors := map[string]bool{}
	for _, a := range f.Get("ancestor") {
		if img, err := m.cfg.Images(ctx, a); err == nil {
			ancestors[img.ID] = true
		}
	}
	var before, since time.Time
	for key, t := range map[string]*time.Time{"before": &before, "since": &since} {
		for _, ref := range f.Get(key) {
			c, err := m.Get(ref)
			if err != nil {
				return nil, err
			}
			*t = c.snapshot().Created
		}
	}
	all := opts.All || opts.Limit > 0 || f.Has("status") || f.Has("exited") || f.Has("before") || f.Has("since")

	now := time.Now()
	out := []ctr.Summary{}
	for _, c := range m.All() {
		rec, sb := c.snapshotRun()
		st := rec.State
		switch {
		case !all && !st.Running():
			continue
		case !f.MatchPrefix("id", rec.ID):
			continue
		case !f.Match("status", string(st.Status)):
			continue
		case !f.MatchLabels("label", rec.Config.Labels):
			continue
		case f.Has("ancestor") && !ancestors[rec.ImageID]:
			continue
		case !before.IsZero() && !rec.Created.Before(before):
			continue
		case !since.IsZero() && !rec.Created.After(since):
			continue
		case f.Has("is-task") && f.Match("is-task", "true"):
			continue
		case f.Has("health") && !f.Match("health", string(healthStatus(st.Health))):
			continue
		case f.Has("network") && !matchNetworks(f.Get("network"), networkSettings(&rec, sb)):
			continue
		case f.Has("publish") && !slices.ContainsFunc(f.Get("publish"), func(p string) bool { return publishes(sb, p) }):
			continue
		case f.Has("volume") && !slices.ContainsFunc(rec.Mounts, func(mp ctr.MountPoint) bool {
			return f.MatchAny("volume", mp.Name, mp.Source, mp.Destination)
		}):
			continue
		}
		if len(nameRes) > 0 && !slices.ContainsFunc(nameRes, func(re *regexp.Regexp) bool { return re.MatchString("/" + rec.Name) }) {
			continue
		}
		if len(exited) > 0 && (st.Status != ctr.StateExited || !slices.Contains(exited, st.ExitCode)) {
			continue
		}
		if f.Has("expose") && !exposes(rec.Config.ExposedPorts, f.Get("expose")) {
			continue
		}
		s := ctr.Summary{
			ID: rec.ID, Names: []string{"/" + rec.Name}, Image: rec.Config.Image, ImageID: rec.ImageID,
			Command: strings.Join(append([]string{rec.Path}, rec.Args...), " "),
			Created: rec.Created.Unix(), Labels: rec.Config.Labels, State: st.Status,
			Status: StatusString(st, now), Ports: portSummaries(&rec, sb),
			NetworkSettings: &ctr.NetworkSettingsSummary{Networks: networkSettings(&rec, sb).Networks},
			Mounts:          mountPoints(rec.Mounts, rec.HostConfig),
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		if st.Health != nil {
			s.Health = &ctr.HealthSummary{Status: st.Health.Status, FailingStreak: st.Health.FailingStreak}
		}
		s.HostConfig.NetworkMode = string(rec.HostConfig.NetworkMode)
		if opts.Size {
			s.SizeRw, s.SizeRootFs = m.sizes(ctx, rec)
		}
		out = append(out, s)
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	return out, nil
}

// snapshotRun returns a copy of the record and the live network sandbox.
func (c *Container) snapshotRun() (record, *bnet.Sandbox) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run != nil {
		return c.rec, c.run.net
	}
	return c.rec, nil
}

// matchNetworks matches ps's network filter: a network name or ID.
func matchNetworks(want []string, ns *ctr.NetworkSettings) bool {
	for name, es := range ns.Networks {
		for _, w := range want {
			if w == name || (w != "" && es.NetworkID != "" && strings.HasPrefix(es.NetworkID, w)) {
				return true
			}
		}
	}
	return false
}

// mountPoints is inspect's Mounts: volumes and binds, then --mount tmpfs
// mounts, as dockerd lists them.
func mountPoints(mps []ctr.MountPoint, hc *ctr.HostConfig) []ctr.MountPoint {
	out := append([]ctr.MountPoint{}, mps...)
	if hc != nil {
		for _, mt := range hc.Mounts {
			if mt.Type == mount.TypeTmpfs {
				out = append(out, ctr.MountPoint{Type: mount.TypeTmpfs, Destination: path.Clean(mt.Target), RW: !mt.ReadOnly})
			}
		}
	}
	return out
}

func ports(exposed network.PortSet) []ctr.PortSummary {
	out := []ctr.PortSummary{}
	for p := range exposed {
		out = append(out, ctr.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
	}
	slices.SortFunc(out, func(a, b ctr.PortSummary) int { return int(a.PrivatePort) - int(b.PrivatePort) })
	return out
}

func exposes(exposed network.PortSet, want []string) bool {
	for _, w := range want {
		p, err := network.ParsePort(w)
		if err != nil {
			continue
		}
		if _, ok := exposed[p]; ok {
			return true
		}
	}
	return false
}

// Prune removes stopped containers matching f (until, label, label!), as
// POST /containers/prune does, and reports what was freed.
func (m *Manager) Prune(ctx context.Context, f filters.Args) (ctr.PruneReport, error) {
	if err := f.Validate("until", "label", "label!"); err != nil {
		return ctr.PruneReport{}, err
	}
	var until time.Time
	if vals := f.Get("until"); len(vals) > 0 {
		t, err := filters.ParseTime(vals[0])
		if err != nil {
			return ctr.PruneReport{}, err
		}
		until = t
	}
	rep := ctr.PruneReport{ContainersDeleted: []string{}}
	for _, c := range m.All() {
		rec := c.snapshot()
		if rec.State.Running() || (!until.IsZero() && !rec.Created.Before(until)) ||
			!f.MatchLabels("label", rec.Config.Labels) || (f.Has("label!") && f.MatchLabels("label!", rec.Config.Labels)) {
			continue
		}
		rw, _ := m.sizes(ctx, rec)
		if err := m.Remove(ctx, rec.ID, RemoveOptions{}); err != nil {
			m.log.Warn("prune container", "container", rec.ID, "err", err)
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, rec.ID)
		rep.SpaceReclaimed += uint64(max(rw, 0))
	}
	m.cfg.Events.Publish(events.ContainerEventType, events.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	return rep, nil
}
