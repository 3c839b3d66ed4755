package pid1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

const (
	rosettaDir = runDir + "/rosetta"
	binfmtDir  = "/proc/sys/fs/binfmt_misc"
)

// rosettaBinfmt registers Rosetta for x86-64 ELF executables: the magic
// and mask Apple documents for Linux VMs (ELF64, little-endian, e_machine
// EM_X86_64 for executables and shared objects). The kernel decodes the \x
// escapes. Flags: F opens the interpreter now, so it works inside
// containers' mount namespaces; C (implies O) runs set-uid binaries with
// their credentials.
const rosettaBinfmt = `:rosetta:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00:\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:` +
	rosettaDir + `/rosetta:CF`

// setupRosetta mounts Apple's Rosetta share (virtiofs tag) and registers it
// with binfmt_misc, so linux/amd64 containers run on Apple silicon.
func setupRosetta(tag string) error {
	if err := os.MkdirAll(rosettaDir, 0o755); err != nil {
		return fmt.Errorf("rosetta: %w", err)
	}
	if err := unix.Mount(tag, rosettaDir, "virtiofs", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		return fmt.Errorf("rosetta: mount virtiofs %s: %w", tag, err)
	}
	if _, err := os.Stat(filepath.Join(binfmtDir, "register")); errors.Is(err, os.ErrNotExist) {
		if err := unix.Mount("binfmt_misc", binfmtDir, "binfmt_misc", unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_NOSUID, ""); err != nil {
			return fmt.Errorf("rosetta: mount binfmt_misc: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(binfmtDir, "rosetta")); err == nil {
		return nil // registered at an earlier boot of this kernel? (F keeps it)
	}
	if err := os.WriteFile(filepath.Join(binfmtDir, "register"), []byte(rosettaBinfmt), 0); err != nil {
		return fmt.Errorf("rosetta: register with binfmt_misc: %w", err)
	}
	return nil
}
