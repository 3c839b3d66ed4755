package wsl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/windows"

	"github.com/berth-dev/berth/internal/connauth"
	"github.com/berth-dev/berth/runtime/fsutil"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

func init() {
	driver.Register("wsl", func(log *slog.Logger) driver.Driver { return New(log) })
}

// Files in the machine's state dir (on Windows).
const (
	distroDir   = "distro"        // the distro's ext4.vhdx, made by wsl --import
	rootfsStamp = "rootfs.sha256" // which rootfs tar the distro holds
	agentCopy   = "berth-agent"   // the agent of a newer rootfs, copied in at start
	agentLog    = "agent.log"
)

// Driver runs the engine in one WSL2 distro.
type Driver struct {
	log *slog.Logger

	life driver.Lifecycle // state, exit; see its lock order

	mu     sync.Mutex // guards the fields below
	m      *driver.Machine
	distro string
	cmd    *exec.Cmd // wsl.exe running the agent
	port   int
	token  string        // every connection to port opens with it (internal/connauth)
	done   chan struct{} // closed when wsl.exe has exited
}

// New returns a stopped WSL driver.
func New(log *slog.Logger) *Driver {
	if log == nil {
		log = slog.Default()
	}
	return &Driver{log: log}
}

// Info implements driver.Driver. WSL relays ports that listen in the
// distro to Windows' loopback and keeps the distro's clock, so the host
// agent forwards nothing (HostPorts) and sets no clock.
func (d *Driver) Info() driver.Info {
	return driver.Info{Name: "wsl", Accel: "hyperv", FileSharing: "drvfs", HostPorts: true}
}

// wslExe runs wsl.exe and returns its output as text.
func wslExe(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "wsl.exe", args...)
	cmd.Env = append(os.Environ(), "WSL_UTF8=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true, CreationFlags: windows.CREATE_NO_WINDOW}
	out, err := cmd.CombinedOutput()
	text := strings.TrimSpace(decode(out))
	if err != nil {
		return text, fmt.Errorf("wsl %s: %w: %s", strings.Join(args, " "), err, text)
	}
	return text, nil
}

// inDistro runs a busybox shell script as root in the distro.
func inDistro(ctx context.Context, distro, script string) (string, error) {
	return wslExe(ctx, "--distribution", distro, "--user", "root", "--exec", busybox, "sh", "-c", script)
}

func distroExists(ctx context.Context, distro string) (bool, error) {
	cmd := exec.CommandContext(ctx, "wsl.exe", "--list", "--quiet")
	cmd.Env = append(os.Environ(), "WSL_UTF8=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true, CreationFlags: windows.CREATE_NO_WINDOW}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		// With no distro at all, wsl --list fails; that is "not there".
		if errors.As(err, &ee) && len(out) > 0 && len(parseList(out)) <= 1 {
			return false, nil
		}
		if errors.Is(err, exec.ErrNotFound) {
			return false, errors.New("wsl.exe not found: install WSL (wsl --install --no-distribution)")
		}
		return false, fmt.Errorf("wsl --list: %w: %s", err, decode(out))
	}
	return slices.Contains(parseList(out), distro), nil
}

// Start implements driver.Driver: it imports the distro the first time (or
// copies in the agent of a newer rootfs), runs berth-agent in it and
// returns once the engine answers /_ping.
func (d *Driver) Start(ctx context.Context, m *driver.Machine) (err error) {
	run, err := d.life.BeginStart(m.Name)
	if err != nil {
		return err
	}
	defer d.life.EndStart(run, &err, d.Stop)

	distro, err := distroName(m.Name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.StateDir, 0o700); err != nil {
		return err
	}
	if err := d.install(ctx, m, distro); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(m.StateDir, agentLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// Windows' loopback port is open to every local user: the engine
	// serves only connections that present this token, which stays in
	// this process and reaches the agent on its stdin (no argv, no file).
	token, err := connauth.NewToken()
	if err != nil {
		return err
	}
	cmd := exec.Command("wsl.exe", "--distribution", distro, "--user", "root", "--exec", busybox, "sh", "-c", agentScript(port, m.EngineArgs))
	cmd.Env = append(os.Environ(), "WSL_UTF8=1")
	cmd.Stdin = strings.NewReader(token + "\n")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true, CreationFlags: windows.CREATE_NO_WINDOW | windows.CREATE_NEW_PROCESS_GROUP}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("run berth-agent in %s: %w", distro, err)
	}
	done := make(chan struct{})
	d.mu.Lock()
	d.m, d.distro, d.cmd, d.port, d.token, d.done = m, distro, cmd, port, token, done
	d.mu.Unlock()
	go func() {
		werr := cmd.Wait()
		logf.Close()
		why := fmt.Sprintf("berth-agent in WSL exited: %v (log: %s)", errOrStatus(werr), logf.Name())
		d.mu.Lock()
		if !d.life.StopAsked() {
			d.log.Warn("engine died", "machine", m.Name, "err", werr)
			// wsl.exe may have gone while the agent runs on in the distro:
			// end it, before the machine counts as stopped, so the next
			// start does not meet it on its state.
			tctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			wslExe(tctx, "--terminate", distro)
			cancel()
		}
		d.life.End(why)
		d.cmd = nil
		d.mu.Unlock()
		close(done)
	}()

	t0 := time.Now()
	if err := driver.WaitEngine(ctx, d, done, 2*time.Second, 50*time.Millisecond); errors.Is(err, driver.ErrEnded) {
		return errors.New(d.life.Status().Exit)
	} else if err != nil {
		return err
	}
	d.life.SetRunning(run)
	d.log.Info("machine ready", "machine", m.Name, "distro", distro, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// install imports the distro from m.Rootfs if it does not exist; if it
// does and Berth has since shipped another rootfs, only the agent is
// replaced, so images, containers and volumes stay.
func (d *Driver) install(ctx context.Context, m *driver.Machine, distro string) error {
	if m.Rootfs == "" {
		return errors.New("no guest root filesystem given (make guest writes wsl-rootfs.tar.gz)")
	}
	sum, err := fileSHA256(m.Rootfs)
	if err != nil {
		return fmt.Errorf("guest root filesystem: %w", err)
	}
	stamp := filepath.Join(m.StateDir, rootfsStamp)
	exists, err := distroExists(ctx, distro)
	if err != nil {
		return err
	}
	dir := filepath.Join(m.StateDir, distroDir)
	if _, err := os.Stat(filepath.Join(dir, "ext4.vhdx")); exists && errors.Is(err, os.ErrNotExist) {
		// `berth delete` removed the state dir, disk included: WSL's
		// registration points at nothing; start over.
		d.log.Info("the WSL distro's disk is gone; registering it again", "distro", distro)
		if _, err := wslExe(ctx, "--unregister", distro); err != nil {
			return err
		}
		exists = false
	}
	if !exists {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		d.log.Info("importing the WSL distro", "distro", distro, "from", m.Rootfs)
		if _, err := wslExe(ctx, "--import", distro, dir, m.Rootfs, "--version", "2"); err != nil {
			return err
		}
		return fsutil.WriteFileAtomic(stamp, []byte(sum+"\n"), 0o600)
	}
	if have, _ := os.ReadFile(stamp); strings.TrimSpace(string(have)) == sum {
		return nil
	}
	d.log.Info("updating berth-agent in the WSL distro", "distro", distro)
	local := filepath.Join(m.StateDir, agentCopy)
	if err := extractAgent(m.Rootfs, local); err != nil {
		return err
	}
	src, err := drvfsPath(local)
	if err != nil {
		return err
	}
	if _, err := inDistro(ctx, distro, updateScript(src)); err != nil {
		return fmt.Errorf("update berth-agent: %w", err)
	}
	return fsutil.WriteFileAtomic(stamp, []byte(sum+"\n"), 0o600)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// freePort is a loopback port free on Windows now; WSL relays the
// distro's listener to it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop implements driver.Driver. Graceful: the agent is sent SIGTERM (it
// stops its containers and saves state) and the distro is then shut down
// with `wsl --terminate`; forced, or if the agent does not exit before ctx
// ends (default 60 s): terminated at once.
func (d *Driver) Stop(ctx context.Context, force bool) error {
	d.mu.Lock()
	cmd, done, distro := d.cmd, d.done, d.distro
	if cmd == nil {
		d.mu.Unlock()
		return nil
	}
	d.life.BeginStop()
	d.mu.Unlock()

	ctx, cancel := driver.StopContext(ctx)
	defer cancel()
	var err error
	if !force {
		if _, err = inDistro(ctx, distro, "kill -TERM $(cat "+pidFile+")"); err == nil {
			select {
			case <-done:
			case <-ctx.Done():
				err = fmt.Errorf("engine did not exit in time: %w", ctx.Err())
			}
		}
		if err != nil {
			d.log.Warn("graceful stop failed; forcing", "err", err)
		}
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer tcancel()
	if _, terr := wslExe(tctx, "--terminate", distro); terr != nil {
		err = errors.Join(err, terr)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// Status implements driver.Driver; PID is wsl.exe's.
func (d *Driver) Status(context.Context) (driver.Status, error) { return d.status(), nil }

func (d *Driver) status() driver.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.life.Status()
	if d.cmd != nil {
		st.PID, st.Accel = d.cmd.Process.Pid, "hyperv"
	}
	return st
}

// DialGuest implements driver.Driver. Only the engine is reachable.
func (d *Driver) DialGuest(ctx context.Context, port uint32) (net.Conn, error) {
	d.mu.Lock()
	p, token, running := d.port, d.token, d.cmd != nil
	d.mu.Unlock()
	if !running {
		return nil, fmt.Errorf("dial guest port %d: %w", port, driver.ErrNotRunning)
	}
	if port != transport.PortEngine {
		return nil, fmt.Errorf("dial guest port %d: the WSL driver serves only the engine (port %d)", port, transport.PortEngine)
	}
	c, err := transport.Dial(ctx, "tcp://127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return nil, err
	}
	if err := connauth.Send(c, token); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

var _ driver.Driver = (*Driver)(nil)

func errOrStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
