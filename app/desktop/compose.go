package desktop

import (
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// ComposeProjectLabel is the label Compose puts on every container and
// network of a project; the Containers view groups by it.
const ComposeProjectLabel = "com.docker.compose.project"

// Project applies action to every container of the Compose project name:
// start, stop or restart, or remove (the containers, running or not, then
// the project's networks, as `docker compose down` does). Each container's
// outcome is reported; a failure does not stop the others.
func (c *Containers) Project(name, action string) ([]ActionResult, error) {
	if name == "" {
		return nil, fmt.Errorf("no project named")
	}
	if action != "start" && action != "stop" && action != "restart" && action != "remove" {
		return nil, fmt.Errorf("unknown project action %q (start, stop, restart or remove)", action)
	}
	ctx, cancel := c.b.opCtx(15 * time.Second)
	res, err := c.b.docker.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", ComposeProjectLabel+"="+name)})
	cancel()
	if err != nil {
		return nil, engineError("list the project's containers", err)
	}
	if len(res.Items) == 0 {
		return nil, fmt.Errorf("no containers in Compose project %q", name)
	}
	perContainer := action
	if action == "remove" {
		perContainer = "force-remove"
	}
	out := make([]ActionResult, len(res.Items))
	var wg sync.WaitGroup
	for i, s := range res.Items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].ID = s.ID
			if err := c.b.containerAction(s.ID, perContainer); err != nil {
				out[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	if action == "remove" {
		ctx, cancel := c.b.opCtx(time.Minute)
		defer cancel()
		nets, err := c.b.docker.NetworkList(ctx, client.NetworkListOptions{
			Filters: make(client.Filters).Add("label", ComposeProjectLabel+"="+name)})
		if err != nil {
			return out, engineError("list the project's networks", err)
		}
		for _, n := range nets.Items {
			if _, err := c.b.docker.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
				out = append(out, ActionResult{ID: n.ID, Error: engineError("remove network "+n.Name, err).Error()})
			}
		}
	}
	return out, nil
}
