package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/guest-agent/control"
)

func init() { register(newShellCommand) }

func newShellCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "shell [-- COMMAND [ARG...]]",
		Short: "Open a root shell in Berth's machine (or run a command there)",
		Long: `Open a root shell in Berth's Linux machine, through the host agent (no SSH).
With a command, run it there instead and exit with its status.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := env.paths()
			if err != nil {
				return err
			}
			c := hostapi.NewClient(p.HostdSocket())
			ctx := cmd.Context()
			stdin, _ := env.Stdin.(*os.File)
			tty := stdin != nil && term.IsTerminal(int(stdin.Fd()))
			o := control.ShellOptions{Cmd: args, Term: env.Getenv("TERM"), Plain: !tty}
			if tty {
				if w, h, err := term.GetSize(int(stdin.Fd())); err == nil {
					o.Rows, o.Cols = uint16(h), uint16(w)
				}
			}
			conn, id, err := c.Shell(ctx, o)
			if errors.Is(err, hostapi.ErrNotRunning) {
				return errors.New("Berth is not running: start it with `berth start`")
			}
			if err != nil {
				return err
			}
			defer conn.Close()
			if tty {
				st, err := term.MakeRaw(int(stdin.Fd()))
				if err == nil {
					defer term.Restore(int(stdin.Fd()), st)
				}
				stop := watchResize(ctx, func(h, w uint) { c.ResizeShell(ctx, id, uint16(h), uint16(w)) })
				defer stop()
			}
			go func() {
				io.Copy(conn, env.Stdin)
				if cw, ok := conn.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
			}()
			io.Copy(env.Stdout, conn)
			code, err := c.ShellExitCode(ctx, id)
			if err != nil {
				return fmt.Errorf("shell: %w", err)
			}
			if code != 0 {
				return ExitError{Code: code}
			}
			return nil
		},
	}
}
