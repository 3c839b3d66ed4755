package desktop

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// Volume is one row of the Volumes view.
type Volume struct {
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Mountpoint string            `json:"mountpoint"`
	CreatedAt  string            `json:"createdAt"`
	Labels     map[string]string `json:"labels"`
}

// Volumes is the Volumes view's service.
type Volumes struct{ b *Backend }

// List returns the volumes by name.
func (v *Volumes) List() ([]Volume, error) {
	ctx, cancel := v.b.opCtx(15 * time.Second)
	defer cancel()
	return v.b.listVolumes(ctx)
}

func (b *Backend) listVolumes(ctx context.Context) ([]Volume, error) {
	res, err := b.docker.VolumeList(ctx, client.VolumeListOptions{})
	if err != nil {
		return nil, engineError("list volumes", err)
	}
	out := make([]Volume, 0, len(res.Items))
	for _, vol := range res.Items {
		out = append(out, Volume{Name: vol.Name, Driver: vol.Driver, Mountpoint: vol.Mountpoint, CreatedAt: vol.CreatedAt, Labels: vol.Labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Create makes a named volume ("" lets the engine pick a name).
func (v *Volumes) Create(name string) (Volume, error) {
	name = strings.TrimSpace(name)
	if name != "" && !validName(name) {
		return Volume{}, fmt.Errorf("create volume: %q: use letters, digits and _ . - (starting with a letter or digit)", name)
	}
	ctx, cancel := v.b.opCtx(time.Minute)
	defer cancel()
	res, err := v.b.docker.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name})
	if err != nil {
		return Volume{}, engineError("create volume "+name, err)
	}
	vol := res.Volume
	return Volume{Name: vol.Name, Driver: vol.Driver, Mountpoint: vol.Mountpoint, CreatedAt: vol.CreatedAt, Labels: vol.Labels}, nil
}

// Remove deletes a volume; the engine refuses one in use unless forced.
func (v *Volumes) Remove(name string, force bool) error {
	ctx, cancel := v.b.opCtx(time.Minute)
	defer cancel()
	_, err := v.b.docker.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: force})
	return engineError("remove volume "+name, err)
}
