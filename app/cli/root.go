// Package cli is the `berth` command: VM lifecycle, and docker's everyday
// container commands over the Engine API (moby/moby/client) at $DOCKER_HOST,
// with docker's flags and output.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// Version is the berth CLI version; set at link time.
var Version = "0.1.0-dev"

// Env is what a command needs from its surroundings; tests replace it.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (DOCKER_HOST, BERTH_HOME).
	Getenv func(string) string
}

// commands registers constructors for the subcommands; each command's file
// adds itself from init, so commands stay independent of each other.
var commands []func(*Env) *cobra.Command

func register(c func(*Env) *cobra.Command) { commands = append(commands, c) }

// NewRoot builds the `berth` command tree.
func NewRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Berth runs Linux containers in a small VM, with the docker API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	var cmds []*cobra.Command
	for _, c := range commands {
		cmds = append(cmds, c(env))
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name() < cmds[j].Name() })
	root.AddCommand(cmds...)
	return root
}

// Main runs the CLI and returns the process exit code. A command that must
// exit with a specific status (docker run passes the container's through)
// returns an ExitError.
func Main(args []string) int {
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	root := NewRoot(env)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return 0
	}
	var ee ExitError
	if errors.As(err, &ee) {
		if ee.Message != "" {
			fmt.Fprintln(env.Stderr, ee.Message)
		}
		return ee.Code
	}
	fmt.Fprintln(env.Stderr, "berth:", err)
	return 1
}

// ExitError ends the CLI with Code, printing Message (if any) first.
type ExitError struct {
	Code    int
	Message string
}

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// apiClient connects to the engine at $DOCKER_HOST (or the default socket),
// negotiating the API version.
func (env *Env) apiClient() (*client.Client, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if h := env.Getenv("DOCKER_HOST"); h != "" {
		opts = append(opts, client.WithHost(h))
	} else if h := defaultHost(env); h != "" {
		opts = append(opts, client.WithHost(h))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("engine client: %w", err)
	}
	return c, nil
}

// defaultHost is Berth's forwarded socket under BERTH_HOME (~/.berth).
func defaultHost(env *Env) string {
	home := env.Getenv("BERTH_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		home = h + "/.berth"
	}
	return "unix://" + home + "/run/docker.sock"
}
