//go:build linux

package container

import (
	"context"
	"fmt"
	"reflect"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// Update changes a container's limits and restart policy (docker update),
// recorded for later runs and, while it runs, written to its cgroup. Only
// the fields set in uc change, as with dockerd; a limit the engine cannot
// apply to a running container is refused by name.
func (m *Manager) Update(ctx context.Context, ref string, uc ctr.UpdateConfig) ([]string, error) {
	if err := checkUpdatable(uc.Resources); err != nil {
		return nil, err
	}
	c, err := m.Get(ref)
	if err != nil {
		return nil, err
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	if err := m.update(c, ref, uc); err != nil {
		return nil, err
	}
	m.event(c, events.ActionUpdate, nil)
	return []string{}, nil
}

func (m *Manager) update(c *Container, ref string, uc ctr.UpdateConfig) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return errdefs.NotFound("No such container: %s", ref)
	}
	hc := *c.rec.HostConfig
	mergeResources(&hc.Resources, uc.Resources)
	if uc.RestartPolicy.Name != "" {
		if hc.AutoRemove && !uc.RestartPolicy.IsNone() {
			return errdefs.InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = uc.RestartPolicy
	}
	if err := validateHostConfig(&hc); err != nil {
		return err
	}
	if c.run != nil {
		if err := c.run.setResources(&hc); err != nil {
			return fmt.Errorf("Cannot update container %s: %w", c.rec.ID, err)
		}
	}
	old := c.rec.HostConfig
	c.rec.HostConfig = &hc
	if err := c.saveLocked(); err != nil {
		c.rec.HostConfig = old
		return err
	}
	if uc.RestartPolicy.Name != "" && c.restart != nil {
		c.restart.setPolicy(hc.RestartPolicy)
	}
	return nil
}

// updatable are the Resources fields docker update may set here: the ones
// resources() turns into cgroup limits.
var updatable = map[string]bool{
	"Memory": true, "MemorySwap": true, "MemoryReservation": true, "CPUShares": true, "NanoCPUs": true,
	"CPUPeriod": true, "CPUQuota": true, "CpusetCpus": true, "CpusetMems": true, "PidsLimit": true,
}

// checkUpdatable refuses any other field set in r, naming it.
func checkUpdatable(r ctr.Resources) error {
	v := reflect.ValueOf(r)
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if updatable[f.Name] || v.Field(i).IsZero() {
			continue
		}
		return errdefs.InvalidArgument("docker update: %s cannot be changed by Berth (it can: memory, memory-swap, memory-reservation, cpu-shares, cpus, cpu-period, cpu-quota, cpuset-cpus, cpuset-mems, pids-limit, restart)", f.Name)
	}
	return nil
}

// mergeResources sets in dst what is set in src.
func mergeResources(dst *ctr.Resources, src ctr.Resources) {
	if src.Memory != 0 {
		dst.Memory = src.Memory
	}
	if src.MemorySwap != 0 {
		dst.MemorySwap = src.MemorySwap
	}
	if src.MemoryReservation != 0 {
		dst.MemoryReservation = src.MemoryReservation
	}
	if src.CPUShares != 0 {
		dst.CPUShares = src.CPUShares
	}
	if src.NanoCPUs != 0 {
		// --cpus replaces a period and quota, as with dockerd.
		dst.NanoCPUs, dst.CPUPeriod, dst.CPUQuota = src.NanoCPUs, 0, 0
	}
	if src.CPUPeriod != 0 {
		dst.CPUPeriod, dst.NanoCPUs = src.CPUPeriod, 0
	}
	if src.CPUQuota != 0 {
		dst.CPUQuota, dst.NanoCPUs = src.CPUQuota, 0
	}
	if src.CpusetCpus != "" {
		dst.CpusetCpus = src.CpusetCpus
	}
	if src.CpusetMems != "" {
		dst.CpusetMems = src.CpusetMems
	}
	if src.PidsLimit != nil {
		p := *src.PidsLimit
		dst.PidsLimit = &p
	}
}

// setResources writes hc's limits to the running container's cgroup.
func (r *run) setResources(hc *ctr.HostConfig) error {
	res, err := resources(hc)
	if err != nil {
		return err
	}
	cfg := r.lc.Config()
	cg := *cfg.Cgroups
	rs := *cg.Resources
	cg.Resources, cfg.Cgroups = &rs, &cg
	if m := res.Memory; m != nil {
		if m.Limit != nil {
			rs.Memory = *m.Limit
		}
		if m.Swap != nil {
			rs.MemorySwap = *m.Swap
		}
		if m.Reservation != nil {
			rs.MemoryReservation = *m.Reservation
		}
	}
	if c := res.CPU; c != nil {
		if c.Shares != nil {
			rs.CpuShares = *c.Shares
		}
		rs.CpuQuota, rs.CpuPeriod = 0, 0
		if c.Quota != nil {
			rs.CpuQuota = *c.Quota
		}
		if c.Period != nil {
			rs.CpuPeriod = *c.Period
		}
		rs.CpusetCpus, rs.CpusetMems = c.Cpus, c.Mems
	}
	if res.CPU == nil || res.CPU.Quota == nil {
		rs.CpuQuota = -1 // no quota (any more): unlimited
	}
	limit := int64(-1) // unlimited
	if res.Pids != nil && res.Pids.Limit != nil {
		limit = *res.Pids.Limit
	}
	rs.PidsLimit = &limit
	return r.lc.Set(cfg)
}

// setPolicy changes the policy applied to the next exits (the count and
// back-off so far are kept, as dockerd's update does).
func (r *restartManager) setPolicy(p ctr.RestartPolicy) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.policy = p
}
