package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/app/hostagent"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

func init() { register(newLogsCommand) }

// newLogsCommand is `berth logs`: the machine's logs (hostd, agent,
// console), or a container's as `docker logs` shows them.
func newLogsCommand(env *Env) *cobra.Command {
	var source string
	containers := newContainerLogsCommand(env)
	cmd := &cobra.Command{
		Use:   "logs [--source hostd|agent|console] | logs [OPTIONS] CONTAINER",
		Short: "Show Berth's logs (host agent, engine, VM console), or a container's",
		Long: `Without a container, show Berth's own logs: --source hostd (the host agent,
the default), agent (the engine in the machine) or console (the machine's
console: kernel and agent). -f follows, -n N shows the last N lines.
With a container, fetch its logs as docker logs does.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return containers.RunE(cmd, args)
			}
			follow, _ := cmd.Flags().GetBool("follow")
			tailFlag, _ := cmd.Flags().GetString("tail")
			tail := -1
			if tailFlag != "all" && tailFlag != "" {
				n, err := strconv.Atoi(tailFlag)
				if err != nil {
					return fmt.Errorf("--tail %q: want a number or all", tailFlag)
				}
				tail = n
			}
			p, err := env.paths()
			if err != nil {
				return err
			}
			rc, err := hostapi.NewClient(p.HostdSocket()).Logs(cmd.Context(), source, tail, follow)
			if err == nil {
				defer rc.Close()
				_, err = io.Copy(env.Stdout, rc)
				return err
			}
			if !errors.Is(err, hostapi.ErrNotRunning) {
				return err
			}
			// No hostd: the files it left.
			path, agentOnly, err := hostagent.LogFile(p, source)
			if err != nil {
				return err
			}
			if _, err := os.Stat(path); err != nil && !follow {
				return fmt.Errorf("no %s log (%s): Berth has not run yet", source, path)
			}
			return hostagent.TailLog(cmd.Context(), env.Stdout, path, agentOnly, tail, follow)
		},
	}
	cmd.Flags().AddFlagSet(containers.Flags())
	cmd.Flags().StringVar(&source, "source", "hostd", "which of Berth's logs: "+strings.Join(hostagent.LogSources, ", "))
	return cmd
}
