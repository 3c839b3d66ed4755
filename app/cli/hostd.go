package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent"
	"github.com/berth-dev/berth/app/hostagent/hostapi"

	// The VM drivers hostd can run.
	_ "github.com/berth-dev/berth/vm/native"
	_ "github.com/berth-dev/berth/vm/qemu"
	_ "github.com/berth-dev/berth/vm/vz"  // macOS only
	_ "github.com/berth-dev/berth/vm/wsl" // Windows only
)

func init() { register(newHostdCommand) }

// paths are Berth's files under $BERTH_HOME (~/.berth).
func (env *Env) paths() (config.Paths, error) {
	if h := env.Getenv("BERTH_HOME"); h != "" {
		abs, err := filepath.Abs(h)
		return config.Paths{Home: abs}, err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return config.Paths{}, err
	}
	return config.Paths{Home: filepath.Join(home, ".berth")}, nil
}

func newHostdCommand(env *Env) *cobra.Command {
	var boot bool
	cmd := &cobra.Command{
		Use:   "hostd",
		Short: "Run the host agent (started for you by `berth start` and the desktop app)",
		Long: `Run the host agent in the foreground: it owns the machine, forwards the
docker socket and published ports, and serves the status API. One runs per
BERTH_HOME. It logs to $BERTH_HOME/logs/hostd.log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := env.paths()
			if err != nil {
				return err
			}
			release, err := hostagent.Lock(p.LockFile())
			if err != nil {
				return err
			}
			defer release()
			if err := os.MkdirAll(p.LogsDir(), 0o700); err != nil {
				return err
			}
			logPath := hostagent.HostdLog(p)
			rotate(logPath, 8<<20)
			logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				return err
			}
			defer logf.Close()
			var w io.Writer = logf
			if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				w = io.MultiWriter(logf, f)
			}
			log := slog.New(slog.NewTextHandler(w, nil))
			a, err := hostagent.New(hostagent.Options{Paths: p, Version: Version, Log: log, Boot: boot})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return a.Run(ctx)
		},
	}
	cmd.Flags().BoolVar(&boot, "boot", true, "start the machine at once (else on the first `berth start`)")
	return cmd
}

func rotate(path string, max int64) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > max {
		os.Rename(path, path+".1")
	}
}

// ensureHostd returns a client of the running hostd, starting `berth
// hostd` in the background (detached, logging to the logs folder) when
// none answers.
func ensureHostd(ctx context.Context, env *Env, p config.Paths) (*hostapi.Client, error) {
	c := hostapi.NewClient(p.HostdSocket())
	if _, err := c.Status(ctx); err == nil {
		return c, nil
	} else if !errors.Is(err, hostapi.ErrNotRunning) {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.LogsDir(), 0o700); err != nil {
		return nil, err
	}
	launchLog := filepath.Join(p.LogsDir(), "hostd-launch.log")
	logf, err := os.OpenFile(launchLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "hostd")
	cmd.Env = append(os.Environ(), "BERTH_HOME="+p.Home)
	cmd.Stdout, cmd.Stderr = logf, logf
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start berth hostd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		if _, err := c.Status(ctx); err == nil {
			return c, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("berth hostd exited (%v); see %s and %s", err, launchLog, hostagent.HostdLog(p))
		case <-deadline.C:
			return nil, fmt.Errorf("berth hostd did not answer on %s within 30s; see %s", p.HostdSocket(), hostagent.HostdLog(p))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
