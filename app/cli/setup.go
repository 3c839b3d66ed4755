package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/installer/setup"
)

func init() { register(newSetupCommand) }

func newSetupCommand(env *Env) *cobra.Command {
	var path, context, docker, remove bool
	var login string
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "First-run setup: berth on PATH, the berth docker context, the docker CLI, start at login",
		Long: `Set up this user for Berth (the installers run it; so can you):
  --path             make berth runnable from a new shell
  --context          write the "berth" docker context (docker --context berth …);
                     the current context is left as it is
  --docker           the docker CLI and its buildx and compose plugins shipped with
                     Berth, where you have none (yours are never replaced)
  --start-at-login   start the desktop app (tray only) when you log in: on or off
With no flags: --path, --context and --docker. --remove undoes them all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := env.paths()
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			desktop := filepath.Join(filepath.Dir(exe), "berth-desktop")
			if runtime.GOOS == "windows" {
				desktop += ".exe"
			}
			if remove {
				_, perr := setup.CLIOnPath(exe, true)
				cerr := setup.DockerContext(p, true)
				lerr := setup.StartAtLogin(desktop, false)
				var derr error
				if dir := setup.FindDockerTools(exe); dir != "" {
					_, derr = setup.DockerTools(dir, true)
				}
				for _, err := range []error{perr, cerr, lerr, derr} {
					if err != nil {
						return err
					}
				}
				fmt.Fprintln(env.Stdout, "Removed berth from PATH, the berth docker context, Berth's docker CLI and plugins, and the login item.")
				return nil
			}
			if !path && !context && !docker && login == "" {
				path, context, docker = true, true, true
			}
			if path {
				where, err := setup.CLIOnPath(exe, false)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "berth is on PATH (%s); open a new shell to use it.\n", where)
			}
			if context {
				if err := setup.DockerContext(p, false); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "docker context %q → %s (use: docker --context %[1]s …, or docker context use %[1]s)\n",
					"berth", p.DockerHost())
			}
			if docker {
				dir := setup.FindDockerTools(exe)
				if dir == "" {
					fmt.Fprintln(env.Stderr, "No docker CLI ships with this berth: --docker skipped.")
				} else {
					notes, err := setup.DockerTools(dir, false)
					if err != nil {
						return err
					}
					for _, n := range notes {
						fmt.Fprintln(env.Stdout, n)
					}
				}
			}
			if login != "" {
				on := login == "on"
				if !on && login != "off" {
					return fmt.Errorf("--start-at-login: want on or off, not %q", login)
				}
				if on {
					if _, err := os.Stat(desktop); err != nil {
						return fmt.Errorf("start at login: no desktop app next to berth (%v)", err)
					}
				}
				if err := setup.StartAtLogin(desktop, on); err != nil {
					return err
				}
				// The desktop app's setting follows.
				if s, err := config.Load(p); err == nil && s.StartAtLogin != on {
					s.StartAtLogin = on
					if err := config.Save(p, s, config.Limits{}); err != nil {
						fmt.Fprintf(env.Stderr, "warning: settings not updated: %v\n", err)
					}
				}
				fmt.Fprintf(env.Stdout, "Start at login: %s\n", login)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&path, "path", false, "put berth on PATH")
	f.BoolVar(&context, "context", false, `write the "berth" docker context`)
	f.BoolVar(&docker, "docker", false, "the shipped docker CLI and plugins, where you have none")
	f.StringVar(&login, "start-at-login", "", "start the desktop app at login: on or off")
	f.BoolVar(&remove, "remove", false, "undo the setup (uninstallers run this)")
	return cmd
}
