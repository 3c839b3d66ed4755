// Package vz runs the Berth machine with Apple's Virtualization framework
// (github.com/Code-Hex/vz/v3) on macOS: the guest's kernel and initramfs
// booted directly, virtio-vsock to the agent, NAT networking, virtiofs
// shares, a memory balloon, Rosetta for x86-64 binaries on Apple silicon,
// and save/restore for a fast resume. The VM runs inside the host agent's
// process, which must be signed with the com.apple.security.virtualization
// entitlement (installer/macos). Importing it on macOS registers "vz".
package vz
