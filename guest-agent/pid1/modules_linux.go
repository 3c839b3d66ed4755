package pid1

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Lists of module paths in load order, written by build/guest.
const (
	bootModules   = "/etc/berth/modules.boot"
	engineModules = "/etc/berth/modules.engine"
	lateModules   = "/etc/berth/modules.late"
)

// loadModules loads the modules listed in list, in order, with
// finit_module. A module already loaded (or built in) is fine; one that
// fails is reported and the rest still load.
func loadModules(list string) error {
	b, err := os.ReadFile(list)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a kernel with everything built in
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range strings.Fields(string(b)) {
		t := time.Now()
		if err := loadModule(p); err != nil {
			errs = append(errs, err)
		}
		if d := time.Since(t); d > 30*time.Millisecond {
			slog.Debug("slow module", "module", filepath.Base(p), "took", d)
		}
	}
	return errors.Join(errs...)
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("module %s: %w", path, err)
	}
	return nil
}
