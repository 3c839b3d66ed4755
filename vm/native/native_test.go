//go:build linux

package native

import (
	"strconv"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testkit"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/driver/drivertest"
)

func TestConformance(t *testing.T) {
	testkit.RequireRoot(t)
	drivertest.Run(t, drivertest.Options{
		New: func(t *testing.T) (driver.Driver, *driver.Machine) {
			dir := t.TempDir()
			return New(nil), &driver.Machine{
				Name:     "nt-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36),
				StateDir: dir,
				Agent:    testkit.Binary(t, "berth-agent"),
			}
		},
	})
}
