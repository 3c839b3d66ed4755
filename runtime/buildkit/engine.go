//go:build linux

package buildkit

import (
	"context"

	"github.com/berth-dev/berth/runtime/buildkit/link"
)

// Engine is what the builder asks of the engine that started it: its local
// images (so `FROM` an image in `docker images` needs no pull), a home for
// the images it builds (so `docker run` sees them at once), and network
// namespaces on the default bridge for RUN steps.
type Engine interface {
	// Image lends a local image; an error satisfying IsNotFound when the
	// engine has none by that name.
	Image(ctx context.Context, ref string) (*link.SharedImage, error)
	// Import adds an exported image to the engine's store and tags it.
	Import(ctx context.Context, req link.ImportRequest) (link.ImportResponse, error)
	// JoinNetwork gives step id a network namespace on the default bridge;
	// LeaveNetwork returns it.
	JoinNetwork(ctx context.Context, id string, req link.SandboxRequest) (link.Sandbox, error)
	LeaveNetwork(ctx context.Context, id string) error
}

// NotFoundError is what an Engine returns for an image it does not have.
type NotFoundError struct{ Ref string }

func (e *NotFoundError) Error() string { return "no such image: " + e.Ref }
