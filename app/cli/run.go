package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { register(newRunCommand) }

// runFlags are the `docker run` flags berth supports, with docker's names.
type runFlags struct {
	detach, interactive, tty, rm bool
	name, workdir, user          string
	entrypoint                   string
	env                          []string
	memory, memorySwap           string
	cpus                         float64
	pidsLimit                    int64
	restart                      string
	detachKeys                   string
	sigProxy                     bool
	net                          netFlags // -p, -P, -v, --mount, --network… (network.go)
}

func newRunCommand(env *Env) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContainer(cmd.Context(), env, cmd, &f, args[0], args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false) // flags after the image belong to the command
	fl := cmd.Flags()
	fl.BoolVarP(&f.detach, "detach", "d", false, "Run container in background and print container ID")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVarP(&f.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.BoolVar(&f.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	fl.StringVar(&f.name, "name", "", "Assign a name to the container")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "Set environment variables")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "Working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringVarP(&f.memory, "memory", "m", "", "Memory limit")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fl.Float64Var(&f.cpus, "cpus", 0, "Number of CPUs")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fl.StringVar(&f.restart, "restart", "no", "Restart policy to apply when a container exits")
	fl.StringVar(&f.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fl.BoolVar(&f.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	f.net.register(fl)
	return cmd
}

// containerConfig turns the flags into the create request.
func (f *runFlags) containerConfig(cmd *cobra.Command, env *Env, image string, args []string) (*container.Config, *container.HostConfig, error) {
	cfg := &container.Config{
		Image: image, Cmd: args, Tty: f.tty, OpenStdin: f.interactive, WorkingDir: f.workdir, User: f.user,
		AttachStdin: f.interactive && !f.detach, AttachStdout: !f.detach, AttachStderr: !f.detach,
	}
	if cfg.AttachStdin {
		cfg.StdinOnce = true
	}
	for _, e := range f.env {
		if !strings.Contains(e, "=") {
			// "-e NAME" passes NAME from this environment, if set.
			if v, ok := lookupEnv(env, e); ok {
				e = e + "=" + v
			} else {
				continue
			}
		}
		cfg.Env = append(cfg.Env, e)
	}
	if cmd.Flags().Changed("entrypoint") {
		cfg.Entrypoint = []string{f.entrypoint}
		if f.entrypoint == "" {
			cfg.Entrypoint = []string{""}
		}
	}
	hc := &container.HostConfig{AutoRemove: f.rm}
	if err := f.net.apply(cfg, hc); err != nil {
		return nil, nil, err
	}
	if f.memory != "" {
		n, err := units.RAMInBytes(f.memory)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", f.memory, err)
		}
		hc.Memory = n
	}
	if f.memorySwap != "" {
		if f.memorySwap == "-1" {
			hc.MemorySwap = -1
		} else {
			n, err := units.RAMInBytes(f.memorySwap)
			if err != nil {
				return nil, nil, fmt.Errorf("invalid argument %q for \"--memory-swap\" flag: %w", f.memorySwap, err)
			}
			hc.MemorySwap = n
		}
	}
	if f.cpus < 0 {
		return nil, nil, fmt.Errorf("invalid argument \"%v\" for \"--cpus\" flag: must be positive", f.cpus)
	}
	hc.NanoCPUs = int64(f.cpus * 1e9)
	if cmd.Flags().Changed("pids-limit") {
		n := f.pidsLimit
		hc.PidsLimit = &n
	}
	rp, err := parseRestartPolicy(f.restart)
	if err != nil {
		return nil, nil, err
	}
	hc.RestartPolicy = rp
	if f.rm && !rp.IsNone() {
		return nil, nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	if f.tty {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			hc.ConsoleSize = [2]uint{uint(h), uint(w)}
		}
	}
	return cfg, hc, nil
}

func lookupEnv(env *Env, name string) (string, bool) {
	v := env.Getenv(name)
	if v == "" {
		return os.LookupEnv(name)
	}
	return v, true
}

// parseRestartPolicy reads no, always, unless-stopped, on-failure[:N].
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil {
			return p, fmt.Errorf("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	if s == "" {
		p.Name = container.RestartPolicyDisabled
	}
	return p, container.ValidateRestartPolicy(p)
}

// daemonError is how docker prints an engine error; run exits 125 with it.
func daemonError(err error) error {
	return ExitError{Code: 125, Message: "berth: " + errorText(err)}
}

func errorText(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "Error response from daemon") || strings.Contains(msg, "Cannot connect") {
		return msg
	}
	return "Error response from daemon: " + msg
}

func runContainer(ctx context.Context, env *Env, cmd *cobra.Command, f *runFlags, image string, args []string) error {
	cfg, hc, err := f.containerConfig(cmd, env, image, args)
	if err != nil {
		return ExitError{Code: 125, Message: "berth: " + err.Error()}
	}
	stdinFile, _ := env.Stdin.(*os.File)
	stdinTTY := stdinFile != nil && term.IsTerminal(int(stdinFile.Fd()))
	if f.tty && f.interactive && !stdinTTY {
		return ExitError{Code: 1, Message: "the input device is not a TTY"}
	}
	c, err := env.apiClient()
	if err != nil {
		return err
	}
	defer c.Close()
	id, err := createContainer(ctx, env, c, cfg, hc, f.name)
	if err != nil {
		return daemonError(err)
	}
	if f.detach {
		if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			return startError(err)
		}
		fmt.Fprintln(env.Stdout, id)
		return nil
	}

	att, err := c.ContainerAttach(ctx, id, client.ContainerAttachOptions{
		Stream: true, Stdin: cfg.AttachStdin, Stdout: true, Stderr: true, DetachKeys: f.detachKeys,
	})
	if err != nil {
		return daemonError(err)
	}
	defer att.Close()
	cond := container.WaitConditionNextExit
	if f.rm {
		cond = container.WaitConditionRemoved
	}
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	wait := c.ContainerWait(waitCtx, id, client.ContainerWaitOptions{Condition: cond})

	var restore func()
	if f.tty && stdinTTY && cfg.AttachStdin {
		if st, err := term.MakeRaw(int(stdinFile.Fd())); err == nil {
			restore = func() { term.Restore(int(stdinFile.Fd()), st) }
			defer restore()
		}
	}
	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if restore != nil {
			restore()
		}
		return startError(err)
	}
	if f.tty {
		stopResize := watchResize(ctx, func(h, w uint) {
			c.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		})
		defer stopResize()
	}
	if f.sigProxy && !f.tty {
		stop := proxySignals(ctx, func(sig string) {
			c.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: sig})
		})
		defer stop()
	}

	streamErr := pumpStreams(att.HijackedResponse, f.tty, cfg.AttachStdin, env.Stdin, env.Stdout, env.Stderr)
	select {
	case res := <-wait.Result:
		<-streamErr
		if res.Error != nil {
			return ExitError{Code: 125, Message: "berth: " + res.Error.Message}
		}
		if res.StatusCode != 0 {
			return ExitError{Code: int(res.StatusCode)}
		}
		return nil
	case err := <-wait.Error:
		return daemonError(err)
	case <-streamErr:
		// The stream ends before the exit is reported only when the user
		// typed the detach keys: the engine records an exit before it ends
		// attached streams.
		if insp, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err == nil && insp.Container.State.Running {
			return nil
		}
		select {
		case res := <-wait.Result:
			if res.StatusCode != 0 {
				return ExitError{Code: int(res.StatusCode)}
			}
			return nil
		case err := <-wait.Error:
			return daemonError(err)
		}
	}
}

// startError maps a failed start to docker's exit codes: 127 for a missing
// command, 126 for one that cannot be run, 125 otherwise.
func startError(err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"), strings.Contains(msg, "system cannot find the file specified"):
		code = 127
	case strings.Contains(msg, "permission denied"):
		code = 126
	}
	return ExitError{Code: code, Message: "berth: " + errorText(err)}
}

// createContainer creates, pulling the image first when the engine does not
// have it, as docker run does.
func createContainer(ctx context.Context, env *Env, c *client.Client, cfg *container.Config, hc *container.HostConfig, name string) (string, error) {
	opts := client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: name}
	res, err := c.ContainerCreate(ctx, opts)
	if cerrdefs.IsNotFound(err) {
		fmt.Fprintf(env.Stderr, "Unable to find image '%s' locally\n", cfg.Image)
		if perr := pullImage(ctx, env, c, cfg.Image, "", env.Stderr); perr != nil {
			return "", perr
		}
		res, err = c.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(env.Stderr, "WARNING: %s\n", w)
	}
	return res.ID, nil
}

// pumpStreams copies the hijacked stream to stdout/stderr (demultiplexed
// without a TTY) and stdin to the container. The returned channel yields
// once the output ends.
func pumpStreams(h client.HijackedResponse, tty, withStdin bool, stdin io.Reader, stdout, stderr io.Writer) <-chan error {
	done := make(chan error, 1)
	var once sync.Once
	finish := func(err error) { once.Do(func() { done <- err }) }
	go func() {
		var err error
		if tty {
			_, err = io.Copy(stdout, h.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, h.Reader)
		}
		finish(err)
	}()
	if withStdin && stdin != nil {
		go func() {
			io.Copy(h.Conn, stdin)
			if cw, ok := h.Conn.(client.CloseWriter); ok {
				cw.CloseWrite()
			}
		}()
	}
	return done
}
