package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

func init() {
	register(newStartCommand)
	register(newStopCommand)
	register(newRestartCommand)
	register(newStatusCommand)
	register(newDeleteCommand)
}

// sizeFlags are the machine's resources as `berth start` takes them.
type sizeFlags struct {
	cpus         int
	memory, disk string
	driver       string
	useContext   bool
}

func (f *sizeFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.cpus, "cpus", 0, "CPUs of the machine (saved for next time)")
	fl.StringVar(&f.memory, "memory", "", "memory of the machine: MiB, or with a unit (2g, 4096m) (saved)")
	fl.StringVar(&f.disk, "disk", "", "size of the data disk: GiB, or with a unit (100g); it only grows (saved)")
	fl.StringVar(&f.driver, "driver", "", "how to run the machine: qemu, native (Linux) … (saved)")
	fl.BoolVar(&f.useContext, "use-context", false, "also make the `berth` docker context the current one")
}

// apply puts the flags that were given into s; changed says whether any did.
func (f *sizeFlags) apply(cmd *cobra.Command, s *config.Settings) (changed bool, err error) {
	fl := cmd.Flags()
	if fl.Changed("cpus") {
		s.CPUs, changed = f.cpus, true
	}
	if fl.Changed("memory") {
		n, err := parseSize(f.memory, units.MiB)
		if err != nil {
			return false, fmt.Errorf("--memory %q: %w", f.memory, err)
		}
		s.MemoryMiB, changed = int(n/units.MiB), true
	}
	if fl.Changed("disk") {
		n, err := parseSize(f.disk, units.GiB)
		if err != nil {
			return false, fmt.Errorf("--disk %q: %w", f.disk, err)
		}
		s.DiskGiB, changed = int(n/units.GiB), true
	}
	if fl.Changed("driver") {
		s.Driver, changed = f.driver, true
	}
	return changed, nil
}

// parseSize reads a bare number in unit, or a size with its own unit (2g).
func parseSize(v string, unit int64) (int64, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0, errors.New("must be positive")
		}
		return n * unit, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil || n <= 0 {
		return 0, errors.New("want a number, or a size such as 2g or 512m")
	}
	return n, nil
}

func newStartCommand(env *Env) *cobra.Command {
	var f sizeFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start Berth's machine; returns once the engine answers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return startMachine(cmd, env, &f, false)
		},
	}
	f.add(cmd)
	return cmd
}

func newRestartCommand(env *Env) *cobra.Command {
	var f sizeFlags
	cmd := &cobra.Command{
		Use:   "restart",
		Short: "Restart Berth's machine (applying changed settings)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return startMachine(cmd, env, &f, true)
		},
	}
	f.add(cmd)
	return cmd
}

func startMachine(cmd *cobra.Command, env *Env, f *sizeFlags, restart bool) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
	defer cancel()
	p, err := env.paths()
	if err != nil {
		return err
	}
	s, err := config.Load(p)
	if err != nil {
		return err
	}
	changed, err := f.apply(cmd, &s)
	if err != nil {
		return err
	}
	if changed {
		if err := config.Save(p, s, hostagent.Limits()); err != nil {
			return err
		}
	}
	t0 := time.Now()
	c, err := ensureHostd(ctx, env, p)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if st.State == hostapi.Running && changed && !restart {
		fmt.Fprintln(env.Stderr, "Settings saved; they apply when the machine restarts (berth restart).")
	}
	var progress *bootProgress
	if st.State != hostapi.Running || restart {
		fmt.Fprintf(env.Stderr, "Starting Berth (%s, %d CPUs, %d MiB memory, %d GiB disk)…\n", driverName(s.Driver, st.Driver), s.CPUs, s.MemoryMiB, s.DiskGiB)
		if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			progress = newBootProgress(env.Stderr)
		}
	}
	var stopProgress func()
	if progress != nil {
		pctx, cancel := context.WithCancel(ctx)
		events, err := c.Events(pctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for err == nil {
				ev, ok := <-events
				if !ok {
					return
				}
				progress.update(ev)
			}
		}()
		stopProgress = func() { cancel(); <-done }
	}
	if restart {
		st, err = c.Restart(ctx)
	} else {
		st, err = c.Start(ctx)
	}
	if stopProgress != nil {
		stopProgress()
		progress.done(st)
	}
	if err != nil {
		return fmt.Errorf("%w (logs: berth logs hostd, berth logs console)", err)
	}
	// What `docker version` needs: the forwarded socket answers /_ping.
	if err := pingSocket(ctx, p.DockerSocket()); err != nil {
		return fmt.Errorf("the machine runs but %s does not answer: %w", p.DockerSocket(), err)
	}
	name := hostagent.ContextName(p)
	if f.useContext {
		if err := hostagent.UseDockerContext(hostagent.DockerConfigDir(), name); err != nil {
			return fmt.Errorf("docker context use %s: %w", name, err)
		}
	}
	fmt.Fprintf(env.Stderr, "Berth is running (%s%s, ready in %.1fs).\n", st.Driver, accelNote(st.Accel), time.Since(t0).Seconds())
	fmt.Fprintf(env.Stdout, "export DOCKER_HOST=%s\n", p.DockerHost())
	if !f.useContext {
		fmt.Fprintf(env.Stderr, "(or: docker context use %s)\n", name)
	}
	return nil
}

func driverName(set, running string) string {
	if set != "" {
		return set
	}
	if running != "" {
		return running
	}
	return "default driver"
}

func accelNote(a string) string {
	if a == "" {
		return ""
	}
	return "/" + a
}

// pingSocket does GET /_ping on the docker socket.
func pingSocket(ctx context.Context, sock string) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func newStopCommand(env *Env) *cobra.Command {
	var force bool
	containers := newContainerStopCommand(env)
	cmd := &cobra.Command{
		Use:   "stop [-f] | stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop Berth's machine (and its host agent), or the containers given",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return containers.RunE(cmd, args)
			}
			p, err := env.paths()
			if err != nil {
				return err
			}
			stopped, err := stopHostd(cmd.Context(), p, force)
			if err != nil {
				return err
			}
			if !stopped {
				fmt.Fprintln(env.Stderr, "Berth is not running.")
				return nil
			}
			fmt.Fprintln(env.Stderr, "Berth stopped.")
			return nil
		},
	}
	cmd.Flags().AddFlagSet(containers.Flags())
	cmd.Flags().BoolVarP(&force, "force", "f", false, "power the machine off at once instead of shutting it down cleanly")
	return cmd
}

// stopHostd stops the machine and hostd and waits until hostd is gone;
// false when none ran.
func stopHostd(ctx context.Context, p config.Paths, force bool) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c := hostapi.NewClient(p.HostdSocket())
	if force {
		if _, err := c.Stop(ctx, true); errors.Is(err, hostapi.ErrNotRunning) {
			return false, nil
		} else if err != nil {
			return false, err
		}
	}
	if err := c.Shutdown(ctx, true); errors.Is(err, hostapi.ErrNotRunning) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	// hostd releases its lock when it exits.
	for {
		release, err := hostagent.Lock(p.LockFile())
		if err == nil {
			release()
			return true, nil
		}
		select {
		case <-ctx.Done():
			return true, fmt.Errorf("berth hostd did not exit: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func newStatusCommand(env *Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the machine's state, resources and versions (exit 1 unless running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := env.paths()
			if err != nil {
				return err
			}
			st, err := hostapi.NewClient(p.HostdSocket()).Status(cmd.Context())
			hostd := err == nil
			if errors.Is(err, hostapi.ErrNotRunning) {
				s, lerr := config.Load(p)
				if lerr != nil {
					return lerr
				}
				st = hostapi.Status{State: hostapi.Stopped, Driver: s.Driver, CPUs: s.CPUs, MemoryMiB: s.MemoryMiB,
					DiskGiB: s.DiskGiB, DockerHost: p.DockerHost()}
			} else if err != nil {
				return err
			}
			if asJSON {
				b, _ := json.MarshalIndent(statusJSON{Status: st, CLIVersion: Version, Hostd: hostd, Context: hostagent.ContextName(p)}, "", "  ")
				fmt.Fprintln(env.Stdout, string(b))
			} else {
				printStatus(env.Stdout, st, hostd, hostagent.ContextName(p))
			}
			if st.State != hostapi.Running {
				return ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

type statusJSON struct {
	hostapi.Status
	CLIVersion string `json:"cliVersion"`
	Hostd      bool   `json:"hostdRunning"`
	Context    string `json:"dockerContext"`
}

func printStatus(w io.Writer, st hostapi.Status, hostd bool, ctxName string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	state := string(st.State)
	if st.State == hostapi.Running && !st.StartedAt.IsZero() {
		state += fmt.Sprintf(" (up %s)", strings.ToLower(units.HumanDuration(time.Since(st.StartedAt))))
	}
	if !hostd {
		state += " (no host agent)"
	}
	fmt.Fprintf(tw, "State:\t%s\n", state)
	if st.Error != "" {
		label := "Error:"
		if st.State != hostapi.Error {
			label = "Last crash:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, st.Error)
	}
	drv := st.Driver
	if drv == "" {
		drv = "default"
	}
	if st.Accel != "" {
		drv += " (" + st.Accel + ")"
	}
	fmt.Fprintf(tw, "Driver:\t%s\n", drv)
	fmt.Fprintf(tw, "CPUs:\t%d\n", st.CPUs)
	fmt.Fprintf(tw, "Memory:\t%d MiB\n", st.MemoryMiB)
	disk := fmt.Sprintf("%d GiB", st.DiskGiB)
	if st.DiskUsedBytes > 0 {
		disk += fmt.Sprintf(" (%s used)", units.BytesSize(float64(st.DiskUsedBytes)))
	}
	fmt.Fprintf(tw, "Disk:\t%s\n", disk)
	fmt.Fprintf(tw, "Docker host:\t%s\n", st.DockerHost)
	fmt.Fprintf(tw, "Docker context:\t%s\n", ctxName)
	if st.Restarts > 0 {
		fmt.Fprintf(tw, "Restarts:\t%d (after crashes)\n", st.Restarts)
	}
	fmt.Fprintf(tw, "Versions:\tberth %s", Version)
	for _, v := range [][2]string{{"hostd", st.HostdVersion}, {"engine", st.EngineVersion}, {"agent", st.AgentVersion}, {"kernel", st.Kernel}} {
		if v[1] != "" {
			fmt.Fprintf(tw, ", %s %s", v[0], v[1])
		}
	}
	fmt.Fprintln(tw)
	for i, pt := range st.Ports {
		label := ""
		if i == 0 {
			label = "Ports:"
		}
		fmt.Fprintf(tw, "%s\t%s → %d/%s (%s)\n", label, net.JoinHostPort(pt.HostIP, strconv.Itoa(pt.HostPort)), pt.GuestPort, pt.Proto, shortContainerID(pt.Container))
	}
	tw.Flush()
}

func shortContainerID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func newDeleteCommand(env *Env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete the machine and its disk (images, containers, volumes); settings are kept",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := env.paths()
			if err != nil {
				return err
			}
			if !force {
				fmt.Fprintf(env.Stderr, "This deletes Berth's machine and its disk in %s: every image, container and volume.\nContinue? [y/N] ", p.MachineDir())
				line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return ExitError{Code: 1, Message: "Not deleted."}
				}
			}
			if _, err := stopHostd(cmd.Context(), p, false); err != nil {
				return err
			}
			if err := os.RemoveAll(p.MachineDir()); err != nil {
				return fmt.Errorf("delete %s: %w", p.MachineDir(), err)
			}
			if dir := hostagent.DockerConfigDir(); dir != "" {
				if err := hostagent.RemoveDockerContext(dir, hostagent.ContextName(p)); err != nil {
					fmt.Fprintf(env.Stderr, "docker context %s: %v\n", hostagent.ContextName(p), err)
				}
			}
			fmt.Fprintln(env.Stderr, "Deleted. `berth start` makes a new machine.")
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return cmd
}
