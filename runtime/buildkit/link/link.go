// Package link is what the engine and its BuildKit builder process tell
// each other, as data: the builder (a separate process, so that BuildKit's
// code stays out of the engine and of every container's init) asks the
// engine for its local images, hands it the images it builds, and borrows
// network namespaces on the engine's default bridge for RUN steps. The
// transport (JSON over a private unix socket) is the callers' business;
// this package imports nothing but the standard library, so the engine can
// use it without linking BuildKit.
package link

import "time"

// Paths of the engine's private API for its builder.
const (
	PathImage     = "/images/"    // GET  /images/{ref}: a SharedImage, or 404
	PathImport    = "/import"     // POST ImportRequest → ImportResponse
	PathSandboxes = "/sandboxes/" // POST /sandboxes/{id} SandboxRequest → Sandbox; DELETE /sandboxes/{id}
)

// Paths of the builder's own admin API, next to /grpc and /session.
const (
	PathDiskUsage = "/_berth/du"    // GET → DiskUsage
	PathPrune     = "/_berth/prune" // POST PruneRequest → PruneReport
)

// SharedImage is a local image as the engine lends it to the builder: its
// distribution manifest (the one it was pulled with, or one made for its
// stored blobs) and the directory holding those blobs as ALGO/HEX files,
// which the builder links into its own content store.
type SharedImage struct {
	ID        string `json:"id"` // config digest
	MediaType string `json:"mediaType"`
	Manifest  []byte `json:"manifest"`
	BlobDir   string `json:"blobDir"`
}

// ImportRequest asks the engine to add an image the builder exported:
// Manifest (a manifest or an index, of which the engine takes the
// manifest for its platform) and every blob it names are files under
// BlobDir as ALGO/HEX. Names are the references to tag it with.
type ImportRequest struct {
	Manifest string   `json:"manifest"` // digest
	BlobDir  string   `json:"blobDir"`
	Names    []string `json:"names,omitempty"`
}

// ImportResponse names the image added.
type ImportResponse struct {
	ID string `json:"id"` // config digest: the image ID
}

// SandboxRequest asks for a network namespace on the default bridge for a
// RUN step.
type SandboxRequest struct {
	Hostname string `json:"hostname"`
}

// Sandbox is a borrowed network namespace, bind-mounted at Path.
type Sandbox struct {
	Path string `json:"path"`
}

// Error is the body of a failed request.
type Error struct {
	Message  string `json:"message"`
	NotFound bool   `json:"notFound,omitempty"`
}

// DiskUsage is the builder's cache, as /system/df reports it.
type DiskUsage struct {
	Records []CacheRecord `json:"records"`
}

// CacheRecord is one build cache record (the Engine API's BuildCache item).
type CacheRecord struct {
	ID          string     `json:"ID"`
	Parents     []string   `json:"Parents,omitempty"`
	Type        string     `json:"Type"`
	Description string     `json:"Description"`
	InUse       bool       `json:"InUse"`
	Shared      bool       `json:"Shared"`
	Size        int64      `json:"Size"`
	CreatedAt   time.Time  `json:"CreatedAt"`
	LastUsedAt  *time.Time `json:"LastUsedAt,omitempty"`
	UsageCount  int        `json:"UsageCount"`
}

// PruneRequest is a cache prune: All also removes records shared with
// images and internal ones; KeepStorage keeps that many bytes; Filters are
// BuildKit's filter strings (e.g. "until=24h", "type==regular").
type PruneRequest struct {
	All           bool          `json:"all"`
	KeepDuration  time.Duration `json:"keepDuration"`
	KeepStorage   int64         `json:"keepStorage"`
	ReservedSpace int64         `json:"reservedSpace"`
	MaxUsedSpace  int64         `json:"maxUsedSpace"`
	MinFreeSpace  int64         `json:"minFreeSpace"`
	Filters       []string      `json:"filters,omitempty"`
}

// PruneReport says what a prune removed.
type PruneReport struct {
	CachesDeleted  []string `json:"cachesDeleted"`
	SpaceReclaimed uint64   `json:"spaceReclaimed"`
}
