// Package engine_test is the engine's acceptance suite: berth-agent runs
// natively, a registry runs in-process, and the stock docker CLI drives it.
package engine_test

import (
	"fmt"
	"os"
	"strings"
)

// engineMounts counts the mounts of the engine (process pid) under its state
// root: other engines' tests mount and unmount in this namespace meanwhile,
// so a count of all mounts proves nothing.
func engineMounts(pid int, root string) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	return strings.Count(string(b), root)
}
