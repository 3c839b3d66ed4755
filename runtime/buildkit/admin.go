//go:build linux

package buildkit

import (
	"context"
	"sync"

	controlapi "github.com/moby/buildkit/api/services/control"
	"google.golang.org/grpc"

	"github.com/berth-dev/berth/runtime/buildkit/link"
)

// DiskUsage lists the build cache, for the engine's /system/df.
func (b *Builder) DiskUsage(ctx context.Context) (link.DiskUsage, error) {
	resp, err := b.controller.DiskUsage(ctx, &controlapi.DiskUsageRequest{})
	if err != nil {
		return link.DiskUsage{}, err
	}
	du := link.DiskUsage{Records: []link.CacheRecord{}}
	for _, r := range resp.Record {
		rec := link.CacheRecord{ID: r.ID, Parents: r.Parents, Type: r.RecordType, Description: r.Description,
			InUse: r.InUse, Shared: r.Shared, Size: r.Size, UsageCount: int(r.UsageCount),
			CreatedAt: r.CreatedAt.AsTime()}
		if r.LastUsedAt != nil {
			t := r.LastUsedAt.AsTime()
			rec.LastUsedAt = &t
		}
		du.Records = append(du.Records, rec)
	}
	return du, nil
}

// Prune removes build cache, for the engine's POST /build/prune (`docker
// builder prune` without buildx); buildx prunes through the control API.
func (b *Builder) Prune(ctx context.Context, req link.PruneRequest) (link.PruneReport, error) {
	st := &pruneStream{ctx: ctx}
	err := b.controller.Prune(&controlapi.PruneRequest{Filter: req.Filters, All: req.All, KeepDuration: int64(req.KeepDuration),
		ReservedSpace: req.KeepStorage + req.ReservedSpace, MaxUsedSpace: req.MaxUsedSpace,
		MinFreeSpace: req.MinFreeSpace}, st)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.report, err
}

// pruneStream collects what the controller's Prune streams back.
type pruneStream struct {
	grpc.ServerStream
	ctx    context.Context
	mu     sync.Mutex
	report link.PruneReport
}

func (s *pruneStream) Context() context.Context { return s.ctx }

func (s *pruneStream) Send(r *controlapi.UsageRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report.CachesDeleted = append(s.report.CachesDeleted, r.ID)
	s.report.SpaceReclaimed += uint64(r.Size)
	return nil
}
