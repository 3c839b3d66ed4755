package testkit

import (
	"os"
	"testing"

	"github.com/berth-dev/berth/app/config"
)

// NativeHome makes a BERTH_HOME whose saved settings pick the native driver
// with no shared folders, for tests that run the real hostd without a VM.
// It sits under /tmp with a short name (unix socket paths are limited);
// the caller removes it once its machine has stopped.
func NativeHome(t *testing.T) config.Paths {
	t.Helper()
	home, err := os.MkdirTemp("", "bh")
	if err != nil {
		t.Fatal(err)
	}
	paths := config.Paths{Home: home}
	s := config.Defaults()
	s.Driver, s.SharedFolders = "native", nil
	if err := config.Save(paths, s, config.Limits{}); err != nil {
		t.Fatal(err)
	}
	return paths
}
