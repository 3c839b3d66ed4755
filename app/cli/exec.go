package cli

import (
	"context"
	"os"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { register(newExecCommand) }

func newExecCommand(env *Env) *cobra.Command {
	var (
		interactive, tty, detach, privileged bool
		user, workdir, detachKeys            string
		envs                                 []string
	)
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			stdinFile, _ := env.Stdin.(*os.File)
			stdinTTY := stdinFile != nil && term.IsTerminal(int(stdinFile.Fd()))
			if tty && interactive && !stdinTTY {
				return ExitError{Code: 1, Message: "the input device is not a TTY"}
			}
			c, err := env.apiClient()
			if err != nil {
				return err
			}
			defer c.Close()
			opts := client.ExecCreateOptions{
				User: user, Privileged: privileged, TTY: tty, WorkingDir: workdir, Cmd: args[1:], DetachKeys: detachKeys,
				AttachStdin: interactive && !detach, AttachStdout: !detach, AttachStderr: !detach,
			}
			for _, e := range envs {
				opts.Env = append(opts.Env, e)
			}
			created, err := c.ExecCreate(ctx, args[0], opts)
			if err != nil {
				return ExitError{Code: 1, Message: errorText(err)}
			}
			if detach {
				if _, err := c.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: tty}); err != nil {
					return ExitError{Code: 1, Message: errorText(err)}
				}
				return nil
			}
			att, err := c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: tty})
			if err != nil {
				return ExitError{Code: 1, Message: errorText(err)}
			}
			defer att.Close()
			if tty && interactive && stdinTTY {
				if st, err := term.MakeRaw(int(stdinFile.Fd())); err == nil {
					defer term.Restore(int(stdinFile.Fd()), st)
				}
			}
			if tty {
				stop := watchResize(ctx, func(h, w uint) {
					c.ExecResize(context.WithoutCancel(ctx), created.ID, client.ExecResizeOptions{Height: h, Width: w})
				})
				defer stop()
			}
			<-pumpStreams(att.HijackedResponse, tty, interactive, env.Stdin, env.Stdout, env.Stderr)
			insp, err := c.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
			if err != nil {
				return ExitError{Code: 1, Message: errorText(err)}
			}
			if insp.ExitCode != 0 {
				return ExitError{Code: insp.ExitCode}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	fl := cmd.Flags()
	fl.BoolVarP(&interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVarP(&tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.BoolVarP(&detach, "detach", "d", false, "Detached mode: run command in the background")
	fl.BoolVar(&privileged, "privileged", false, "Give extended privileges to the command")
	fl.StringVarP(&user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fl.StringVarP(&workdir, "workdir", "w", "", "Working directory inside the container")
	fl.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.StringArrayVarP(&envs, "env", "e", nil, "Set environment variables")
	return cmd
}
