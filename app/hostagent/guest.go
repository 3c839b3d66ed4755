package hostagent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
	"github.com/berth-dev/berth/guest-agent/control"
	"github.com/berth-dev/berth/vm/driver"
	"github.com/berth-dev/berth/vm/transport"
)

// GuestFiles are what drivers run: the VM's kernel, initramfs and system
// disk (make guest) and, for the native driver, berth-agent.
type GuestFiles struct {
	Kernel, Initrd, System, Agent string
	Rootfs                        string // WSL: the distro's root filesystem
}

// FindGuestFiles looks for the guest files: $BERTH_GUEST_DIR, then next to
// the running binary as installed (../share/berth/guest/ARCH; in the macOS
// app bundle ../Resources/guest/ARCH) or as built
// in the source tree (bin/berth → build/guest/out/ARCH). berth-agent:
// $BERTH_AGENT, next to the binary, then PATH.
func FindGuestFiles() GuestFiles {
	var dirs []string
	if d := os.Getenv("BERTH_GUEST_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	exeDir := ""
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		exeDir = filepath.Dir(exe)
		dirs = append(dirs,
			filepath.Join(exeDir, "..", "share", "berth", "guest", runtime.GOARCH),
			filepath.Join(exeDir, "..", "Resources", "guest", runtime.GOARCH), // Berth.app/Contents/MacOS
			filepath.Join(exeDir, "..", "build", "guest", "out", runtime.GOARCH))
	}
	var f GuestFiles
	for _, d := range dirs {
		k, i, sys := filepath.Join(d, "vmlinuz"), filepath.Join(d, "initrd.img"), filepath.Join(d, driver.SystemDisk)
		if exists(k) && exists(i) {
			if exists(sys) {
				f.System = filepath.Clean(sys)
			}
			// The uncompressed ELF kernel (x86) boots faster: no
			// decompression (QEMU enters it through PVH).
			if v := filepath.Join(d, "vmlinux"); exists(v) {
				k = v
			}
			f.Kernel, f.Initrd = filepath.Clean(k), filepath.Clean(i)
			if r := filepath.Join(d, "wsl-rootfs.tar.gz"); exists(r) {
				f.Rootfs = filepath.Clean(r)
			}
			break
		}
	}
	f.Agent = os.Getenv("BERTH_AGENT")
	if f.Agent == "" && exeDir != "" && exists(filepath.Join(exeDir, "berth-agent")) {
		f.Agent = filepath.Join(exeDir, "berth-agent")
	}
	if f.Agent == "" {
		f.Agent, _ = exec.LookPath("berth-agent")
	}
	return f
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// machineName names the machine's host-wide resources: "berth" for the
// default home, else one per home.
// MachineName is the name of the machine of a home; the native driver's
// engine puts its containers under the cgroup "/berth-" + MachineName.
func MachineName(p config.Paths) string { return machineName(p) }

func machineName(p config.Paths) string {
	if home, err := os.UserHomeDir(); err == nil && filepath.Clean(p.Home) == filepath.Join(home, ".berth") {
		return "berth"
	}
	h := sha256.Sum256([]byte(p.Home))
	return "berth-" + hex.EncodeToString(h[:4])
}

// guestPath is what a shared folder's path must look like to pass the
// kernel command line.
var guestPath = regexp.MustCompile(`^/[^\s:,"]*$`)

// shares turns the shared folders into driver shares, each visible at the
// same path in the guest. A folder inside another shared one is already
// there; one whose path cannot be passed is skipped with a warning.
func shares(folders []string, log *slog.Logger) []driver.Share {
	var out []driver.Share
	for _, f := range folders {
		f = filepath.Clean(f)
		if !guestPath.MatchString(f) {
			log.Warn("shared folder skipped: its path has spaces, colons, commas or quotes", "folder", f)
			continue
		}
		covered := false
		for _, g := range folders {
			g = filepath.Clean(g)
			if g != f && (g == "/" || strings.HasPrefix(f, g+"/")) {
				covered = true
			}
		}
		if covered {
			continue
		}
		out = append(out, driver.Share{Tag: fmt.Sprintf("share%d", len(out)), HostPath: f, GuestPath: f})
	}
	return out
}

// consoleLog is the machine's console log (VM drivers).
func consoleLog(stateDir string) string { return filepath.Join(stateDir, driver.ConsoleLog) }

// rotateLog moves a log bigger than max to NAME.1 (replacing it).
func rotateLog(path string, max int64) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > max {
		os.Rename(path, path+".1")
	}
}

var serverVersionOptions = client.ServerVersionOptions{}

// engineClient is an Engine API client over the machine's engine port.
func engineClient(d transport.GuestDialer) (*client.Client, error) {
	return client.New(client.WithHost("http://berth"), client.WithAPIVersionNegotiation(),
		client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialGuest(ctx, transport.PortEngine)
		}))
}

// controlClient reaches the guest's control API (VM drivers only).
func controlClient(d transport.GuestDialer) *control.Client {
	return &control.Client{Dial: func(ctx context.Context) (net.Conn, error) {
		return d.DialGuest(ctx, transport.PortControl)
	}}
}

// healthCache keeps the guest's last health answer briefly: the window
// polls the status often.
type healthCache struct {
	mu sync.Mutex
	at time.Time
	h  control.Health
}

// guestHealth asks the guest's control API for its health.
func (a *Agent) guestHealth(ctx context.Context, d transport.GuestDialer) (control.Health, error) {
	h, err := controlClient(d).Health(ctx)
	if err == nil {
		a.health.mu.Lock()
		a.health.at, a.health.h = time.Now(), h
		a.health.mu.Unlock()
	}
	return h, err
}

// refreshDiskUsage updates DiskUsedBytes from the guest at most every few
// seconds.
func (a *Agent) refreshDiskUsage(ctx context.Context) {
	a.health.mu.Lock()
	fresh := time.Since(a.health.at) < 5*time.Second
	a.health.mu.Unlock()
	a.mu.Lock()
	drv, running := a.drv, a.st.State == hostapi.Running
	a.mu.Unlock()
	if fresh || !running {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	h, err := a.guestHealth(ctx, drv)
	if err != nil {
		return
	}
	a.mu.Lock()
	a.st.DiskUsedBytes = int64(h.Disk.UsedBytes)
	a.mu.Unlock()
}
