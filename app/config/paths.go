package config

import (
	"os"
	"path/filepath"
)

// Paths are Berth's files under one home directory (BERTH_HOME, default
// ~/.berth). One host agent runs per home.
type Paths struct{ Home string }

// DefaultPaths uses $BERTH_HOME, else ~/.berth.
func DefaultPaths() (Paths, error) {
	if h := os.Getenv("BERTH_HOME"); h != "" {
		abs, err := filepath.Abs(h)
		return Paths{Home: abs}, err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return Paths{}, err
	}
	return Paths{Home: filepath.Join(home, ".berth")}, nil
}

func (p Paths) ConfigFile() string   { return filepath.Join(p.Home, "config.json") }
func (p Paths) RunDir() string       { return filepath.Join(p.Home, "run") }
func (p Paths) DockerSocket() string { return filepath.Join(p.Home, "run", "docker.sock") }
func (p Paths) HostdSocket() string  { return filepath.Join(p.Home, "run", "hostd.sock") }
func (p Paths) LockFile() string     { return filepath.Join(p.Home, "run", "hostd.lock") }
func (p Paths) LogsDir() string      { return filepath.Join(p.Home, "logs") }
func (p Paths) MachineDir() string   { return filepath.Join(p.Home, "machine") }

// DockerHost is the DOCKER_HOST value for the forwarded socket.
func (p Paths) DockerHost() string { return "unix://" + p.DockerSocket() }
