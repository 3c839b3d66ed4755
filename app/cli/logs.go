package cli

import (
	"fmt"
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newContainerLogsCommand is docker's `logs`; `berth logs` runs it when
// given a container (machinelogs.go).
func newContainerLogsCommand(env *Env) *cobra.Command {
	var opts client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.apiClient()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			insp, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return fmt.Errorf("%s", errorText(err))
			}
			opts.ShowStdout, opts.ShowStderr = true, true
			rc, err := c.ContainerLogs(ctx, insp.Container.ID, opts)
			if err != nil {
				return fmt.Errorf("%s", errorText(err))
			}
			defer rc.Close()
			if insp.Container.Config.Tty {
				_, err = io.Copy(env.Stdout, rc)
			} else {
				_, err = stdcopy.StdCopy(env.Stdout, env.Stderr, rc)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "Follow log output")
	fl.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "Show timestamps")
	fl.StringVarP(&opts.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	fl.StringVar(&opts.Since, "since", "", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	fl.StringVar(&opts.Until, "until", "", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	fl.BoolVar(&opts.Details, "details", false, "Show extra details provided to logs")
	return cmd
}
