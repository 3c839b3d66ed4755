//go:build linux

package engineapi

import (
	"net/http"

	"github.com/moby/moby/api/types/build"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/filters"
)

// diskRoutes registers docker system df and container prune. Owned by
// the network/volume work.
func (s *Server) diskRoutes(rt *router) {
	rt.handle(http.MethodGet, "/system/df", s.systemDF)
	rt.handle(http.MethodPost, "/containers/prune", s.containerPrune)
}

// legacyDiskUsage is /system/df as API versions before 1.52 answer it
// (docker CLI 28 speaks 1.50 and reads these fields).
type legacyDiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []ctr.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.eng.Containers.List(r.Context(), container.ListOptions{All: true, Size: true})
	if err != nil {
		return err
	}
	imgs, err := s.eng.Images.Summaries(filters.Args{}, false)
	if err != nil {
		return err
	}
	users := map[string]int64{}
	for _, c := range cs {
		users[c.ImageID]++
	}
	var layers int64
	for i := range imgs {
		imgs[i].Containers = users[imgs[i].ID]
		layers += imgs[i].Size
	}
	vols := s.eng.Volumes.Usage()
	cache, err := s.buildkitDiskUsage(r.Context())
	if err != nil {
		return err
	}
	if versionLess(apiVersion(r), "1.52") {
		if cache == nil {
			cache = []build.CacheRecord{}
		}
		du := legacyDiskUsage{LayersSize: layers, Images: imgs, Containers: listCompat(r, cs), Volumes: vols, BuildCache: cache}
		if apiBefore(r, "1.44") {
			images := make([]wrapped, len(imgs))
			for i := range imgs {
				images[i] = wrapped{base: &imgs[i], extra: map[string]any{"VirtualSize": imgs[i].Size}}
			}
			return writeJSON(w, http.StatusOK, wrapped{base: du, omit: []string{"Images"}, extra: map[string]any{"Images": images}})
		}
		return writeJSON(w, http.StatusOK, du)
	}
	du := system.DiskUsage{
		ImageUsage:      &image.DiskUsage{Items: imgs, TotalCount: int64(len(imgs)), TotalSize: layers},
		ContainerUsage:  &ctr.DiskUsage{Items: cs, TotalCount: int64(len(cs))},
		VolumeUsage:     &volume.DiskUsage{Items: vols, TotalCount: int64(len(vols))},
		BuildCacheUsage: &build.DiskUsage{Items: cache, TotalCount: int64(len(cache))},
	}
	for _, c := range cache {
		du.BuildCacheUsage.TotalSize += c.Size
		if c.InUse {
			du.BuildCacheUsage.ActiveCount++
		} else if !c.Shared {
			du.BuildCacheUsage.Reclaimable += c.Size
		}
	}
	for _, im := range imgs {
		if im.Containers > 0 {
			du.ImageUsage.ActiveCount++
		} else {
			du.ImageUsage.Reclaimable += im.Size
		}
	}
	for _, c := range cs {
		du.ContainerUsage.TotalSize += c.SizeRw
		if c.State == ctr.StateRunning || c.State == ctr.StatePaused {
			du.ContainerUsage.ActiveCount++
		} else {
			du.ContainerUsage.Reclaimable += c.SizeRw
		}
	}
	for _, v := range vols {
		if v.UsageData == nil {
			continue
		}
		du.VolumeUsage.TotalSize += max(v.UsageData.Size, 0)
		if v.UsageData.RefCount > 0 {
			du.VolumeUsage.ActiveCount++
		} else {
			du.VolumeUsage.Reclaimable += max(v.UsageData.Size, 0)
		}
	}
	return writeJSON(w, http.StatusOK, du)
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) error {
	f, err := filters.Parse(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	rep, err := s.eng.Containers.Prune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
