package pid1

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// moduleList is the load order of a group of build/guest/modules.txt
// (boot, nft, vsock, net, shares, engine, late), written by build/guest.
func moduleList(group string) string { return "/etc/berth/modules." + group }

// loadModules loads the modules listed in list with finit_module. The list
// is in levels separated by blank lines; a level's modules depend only on
// earlier ones and load in parallel. A module already loaded (or built in)
// is fine; one that fails is reported and the rest still load.
func loadModules(list string) error {
	b, err := os.ReadFile(list)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a kernel with everything built in
	}
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	for _, level := range strings.Split(string(b), "\n\n") {
		var wg sync.WaitGroup
		for _, p := range strings.Fields(level) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.Now()
				err := loadModule(p)
				if d := time.Since(t); d > 50*time.Millisecond {
					slog.Debug("slow module", "module", filepath.Base(p), "took", d)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
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
