package cli

import (
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func init() { register(newVersionCommand) }

func newVersionCommand(env *Env) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the berth CLI and engine versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(env.Stdout, 0, 0, 1, ' ', 0)
			fmt.Fprintf(w, "Client:\n Version:\t%s\n Go version:\t%s\n OS/Arch:\t%s/%s\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if clientOnly {
				return w.Flush()
			}
			c, err := env.apiClient()
			if err != nil {
				return err
			}
			defer c.Close()
			v, err := c.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
			if err != nil {
				w.Flush()
				return fmt.Errorf("cannot reach the engine at %s: %w", c.DaemonHost(), err)
			}
			fmt.Fprintf(w, "\nServer: %s\n Engine:\n  Version:\t%s\n  API version:\t%s (minimum version %s)\n  OS/Arch:\t%s/%s\n",
				v.Platform.Name, v.Version, v.APIVersion, v.MinAPIVersion, v.Os, v.Arch)
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "show only the client version (no engine needed)")
	return cmd
}
