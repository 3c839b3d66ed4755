//go:build linux

// Package image is the engine's image store: a content-addressed blob store
// (manifests, configs, compressed layers by digest), the references that
// name images, and the registry operations on them (pull, push), plus
// save/load of docker-archive tarballs. Unpacked layers live in the
// snapshot store.
package image

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Image is what the rest of the engine needs to know about a local image.
type Image struct {
	ID          string   // "sha256:…" digest of the config blob
	RepoTags    []string // normalized: "docker.io/library/busybox:latest"
	RepoDigests []string // "docker.io/library/busybox@sha256:…"
	Config      *v1.ConfigFile
	ChainID     string // chain ID of the top layer; "" for an image with no layers
	Size        int64  // unpacked size of all layers
	Created     time.Time
}
