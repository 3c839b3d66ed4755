//go:build linux

// Package container runs containers: it is the only package that imports
// libcontainer. It turns a create request plus its image's config into a
// libcontainer configuration, owns each container's processes and stdio,
// keeps its logs and state on disk, and applies restart policies.
package container
