//go:build linux

package buildkit

import (
	"context"

	"github.com/containerd/containerd/v2/pkg/oci"
	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/util/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/buildkit/link"
)

// bridgeProvider gives each RUN step a network namespace on the engine's
// default bridge, as a `docker run` container gets: outbound NAT, the
// engine's DNS settings, host.docker.internal.
type bridgeProvider struct{ eng Engine }

func (p *bridgeProvider) New(ctx context.Context, hostname string, _ network.NamespaceOptions) (network.Namespace, error) {
	id := "buildkit-" + identity.NewID()[:20]
	sb, err := p.eng.JoinNetwork(ctx, id, link.SandboxRequest{Hostname: hostname})
	if err != nil {
		return nil, err
	}
	return &bridgeNS{eng: p.eng, id: id, path: sb.Path}, nil
}

func (p *bridgeProvider) Close() error { return nil }

type bridgeNS struct {
	eng      Engine
	id, path string
}

func (ns *bridgeNS) Set(s *specs.Spec) error {
	return oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: ns.path})(nil, nil, nil, s)
}

func (ns *bridgeNS) Close() error {
	return ns.eng.LeaveNetwork(context.Background(), ns.id)
}

func (ns *bridgeNS) Sample() (*resourcestypes.NetworkSample, error) { return nil, nil }
