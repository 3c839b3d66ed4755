// Package native is the Linux-only driver that runs berth-agent as a plain
// host process, with no VM: the engine measured and tested on its own.
// Importing it registers the driver as "native".
package native
