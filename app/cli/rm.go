package cli

import (
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func init() {
	register(newRmCommand)
}

// eachContainer runs op on every argument, printing the argument on success
// and docker's error line otherwise; any failure makes the exit status 1.
func eachContainer(env *Env, args []string, op func(c *client.Client, ref string) error) error {
	c, err := env.apiClient()
	if err != nil {
		return err
	}
	defer c.Close()
	failed := false
	for _, ref := range args {
		if err := op(c, ref); err != nil {
			fmt.Fprintln(env.Stderr, errorText(err))
			failed = true
			continue
		}
		fmt.Fprintln(env.Stdout, ref)
	}
	if failed {
		return ExitError{Code: 1}
	}
	return nil
}

func newRmCommand(env *Env) *cobra.Command {
	var opts client.ContainerRemoveOptions
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(env, args, func(c *client.Client, ref string) error {
				_, err := c.ContainerRemove(cmd.Context(), ref, opts)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&opts.RemoveVolumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

// newContainerStopCommand is docker's `stop`; `berth stop` runs it when
// given containers (machine.go).
func newContainerStopCommand(env *Env) *cobra.Command {
	var (
		signal  string
		timeout int
	)
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := client.ContainerStopOptions{Signal: signal}
			if cmd.Flags().Changed("timeout") {
				opts.Timeout = &timeout
			}
			return eachContainer(env, args, func(c *client.Client, ref string) error {
				_, err := c.ContainerStop(cmd.Context(), ref, opts)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	return cmd
}
