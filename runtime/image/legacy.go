//go:build linux

package image

import (
	"encoding/json"
	"fmt"

	ctr "github.com/moby/moby/api/types/container"
)

// Legacy is what an image's inspect carried in API versions before 1.45
// and 1.52, read from its config as dockerd recorded it: the parent image
// (commits and classic builds), the comment and Docker version, and the
// container the image was committed from with that container's config.
type Legacy struct {
	Parent          string
	Comment         string
	DockerVersion   string
	Container       string
	ContainerConfig *ctr.Config
}

// Legacy reads ref's legacy fields.
func (s *Store) Legacy(ref string) (Legacy, error) {
	img, err := s.Get(ref)
	if err != nil {
		return Legacy{}, err
	}
	raw, err := s.content.read(img.ID)
	if err != nil {
		return Legacy{}, fmt.Errorf("image %s: config: %w", img.ID, err)
	}
	var cf struct {
		Comment         string      `json:"comment"`
		DockerVersion   string      `json:"docker_version"`
		Container       string      `json:"container"`
		ContainerConfig *ctr.Config `json:"container_config"`
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		return Legacy{}, fmt.Errorf("image %s: config: %w", img.ID, err)
	}
	return Legacy{Parent: img.Parent, Comment: cf.Comment, DockerVersion: cf.DockerVersion,
		Container: cf.Container, ContainerConfig: cf.ContainerConfig}, nil
}
