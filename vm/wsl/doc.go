// Package wsl runs the Berth engine in a WSL2 distro on Windows: the guest's
// root filesystem (make guest: wsl-rootfs.tar.gz) is imported once with
// `wsl --import`, berth-agent runs in it as root, and the host reaches its
// Engine API over localhost, which WSL relays from the distro to Windows
// (as it relays containers' published ports). Lifecycle goes through
// wsl.exe. Importing it on Windows registers "wsl".
package wsl
