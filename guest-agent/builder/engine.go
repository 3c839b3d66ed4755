//go:build linux

package builder

import (
	"context"

	ctr "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/runtime/buildkit/link"
	"github.com/berth-dev/berth/runtime/image"
	"github.com/berth-dev/berth/runtime/network"
)

// engineServices serves the builder from the engine's image store and
// network manager.
type engineServices struct {
	images   *image.Store
	networks *network.Manager
}

// NewServices serves the builder from the engine's parts.
func NewServices(images *image.Store, networks *network.Manager) Services {
	return &engineServices{images: images, networks: networks}
}

func (s *engineServices) Image(ref string) (link.SharedImage, error) {
	sh, err := s.images.Share(ref)
	if err != nil {
		return link.SharedImage{}, err
	}
	return link.SharedImage{ID: sh.ID, MediaType: sh.MediaType, Manifest: sh.Manifest, BlobDir: sh.BlobDir}, nil
}

func (s *engineServices) Import(ctx context.Context, req link.ImportRequest) (string, error) {
	img, err := s.images.Import(ctx, req.BlobDir, req.Manifest, req.Names)
	if err != nil {
		return "", err
	}
	return img.ID, nil
}

func (s *engineServices) JoinNetwork(id, hostname string) (string, error) {
	sb, err := s.networks.Join(network.JoinRequest{ID: id, Name: id, Hostname: hostname, Mode: ctr.NetworkMode("bridge")})
	if err != nil {
		return "", err
	}
	return sb.Path, nil
}

func (s *engineServices) LeaveNetwork(id string) { s.networks.Leave(id) }

func (s *engineServices) HostGateway() string {
	if gw := s.networks.HostGateway(); gw.IsValid() {
		return gw.String()
	}
	return ""
}
