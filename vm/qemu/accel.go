package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/runtime/fsutil"
	"github.com/berth-dev/berth/vm/driver"
)

// probeMarker is what guest-agent/pid1 prints on a probe boot.
const probeMarker = "BERTH-PROBE-OK"

// chooseAccel picks the accelerator: forced by want ("kvm", "tcg" …), else
// the platform's hypervisor if a probe boot shows it runs our kernel, else
// TCG. A /dev/kvm that exists does not always run guests (nested or
// paravirtualised hosts), so KVM is trusted only after a probe; the result
// is cached per QEMU binary and kernel.
func chooseAccel(ctx context.Context, log *slog.Logger, want, qemuBin string, m *driver.Machine) (string, error) {
	if want != "" {
		return want, nil
	}
	var hv string
	switch runtime.GOOS {
	case "linux":
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err != nil {
			return "tcg", nil
		}
		f.Close()
		hv = "kvm"
	case "darwin":
		hv = "hvf"
	case "windows":
		hv = "whpx"
	default:
		return "tcg", nil
	}
	key := probeKey(qemuBin, m.Kernel, hv)
	cache := probeCachePath()
	if c, err := readProbeCache(cache); err == nil && c.Key == key {
		return c.Accel, nil
	}
	accel := "tcg"
	t0 := time.Now()
	err := probe(ctx, qemuBin, hv, m)
	if err == nil {
		accel = hv
	} else if ctx.Err() != nil {
		return "", ctx.Err()
	}
	log.Info("accelerator probe", "accel", hv, "usable", err == nil, "took", time.Since(t0).Round(time.Millisecond), "why", errString(err))
	writeProbeCache(cache, probeCache{Key: key, Accel: accel, Why: errString(err), At: time.Now().UTC()})
	return accel, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// probe boots the kernel and initrd with hv and "berth.probe=1", and
// succeeds if the guest's PID 1 prints its marker and powers off.
func probe(ctx context.Context, qemuBin, hv string, m *driver.Machine) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	pm := *m
	pm.MemoryMiB, pm.CPUs, pm.EngineArgs, pm.Shares = 256, 1, nil, nil
	args, err := buildArgs(&pm, qemuConfig{arch: runtime.GOARCH, accel: hv, probe: true})
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, qemuBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if bytes.Contains(out.Bytes(), []byte(probeMarker)) {
		return nil
	}
	tail := out.String()
	if len(tail) > 300 {
		tail = tail[len(tail)-300:]
	}
	if ctx.Err() != nil {
		return fmt.Errorf("guest did not boot in 20s under %s", hv)
	}
	return fmt.Errorf("guest did not boot under %s: %v: %s", hv, err, strings.TrimSpace(tail))
}

type probeCache struct {
	Key   string    `json:"key"`
	Accel string    `json:"accel"`
	Why   string    `json:"why,omitempty"`
	At    time.Time `json:"at"`
}

func probeKey(qemuBin, kernel, hv string) string {
	id := func(p string) string {
		if lp, err := exec.LookPath(p); err == nil {
			p = lp
		}
		fi, err := os.Stat(p)
		if err != nil {
			return p
		}
		return fmt.Sprintf("%s:%d:%d", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return hv + "|" + id(qemuBin) + "|" + id(kernel)
}

func probeCachePath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "berth", "accel-probe.json")
}

func readProbeCache(path string) (probeCache, error) {
	var c probeCache
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

func writeProbeCache(path string, c probeCache) {
	b, _ := json.MarshalIndent(c, "", "  ")
	os.MkdirAll(filepath.Dir(path), 0o755)
	fsutil.WriteFileAtomic(path, append(b, '\n'), 0o644)
}
