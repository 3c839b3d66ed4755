package transport

import (
	"context"
	"net"
)

// Guest ports: the services the guest agent offers to the host, whatever
// channel carries them (vsock ports, or virtio-serial stream headers).
const (
	PortControl uint32 = 1024 // guest-agent/control: health, shutdown, time, fstrim
	PortEngine  uint32 = 2375 // the Docker Engine API
	PortNet     uint32 = 1025 // the dial service: TCP/UDP addresses inside the guest (DialNet)
)

// GuestDialer reaches a service in the guest by port.
type GuestDialer interface {
	DialGuest(ctx context.Context, port uint32) (net.Conn, error)
}

// Routes maps guest ports to the local addresses that serve them inside the
// guest (unix:///run/berth/docker.sock …).
type Routes map[uint32]string
