//go:build linux

package buildkit

import (
	"context"
	"sync"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"
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

// Collect applies the cache bound at once when the cache has grown past
// it. BuildKit's own collection runs at most once a minute, so without
// this a build that went over the bound would keep the disk that full for
// up to a minute; the engine calls it after every build.
func (b *Builder) Collect(ctx context.Context) error {
	if b.maxUsed <= 0 || !b.collecting.TryLock() {
		return nil // no bound, or a collection is under way
	}
	defer b.collecting.Unlock()
	du, err := b.worker.DiskUsage(ctx, client.DiskUsageInfo{})
	if err != nil {
		return err
	}
	var total int64
	for _, r := range du {
		total += r.Size
	}
	if total <= b.maxUsed {
		return nil
	}
	ch := make(chan client.UsageInfo)
	done := make(chan int64)
	go func() {
		var freed int64
		for ui := range ch {
			freed += ui.Size
		}
		done <- freed
	}()
	err = b.worker.Prune(ctx, ch, b.worker.GCPolicy()...)
	close(ch)
	freed := <-done
	b.log.Debug("build cache over its bound: collected", "used", total, "bound", b.maxUsed, "freed", freed)
	return err
}
