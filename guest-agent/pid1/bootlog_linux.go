package pid1

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/guest-agent/control"
)

// bootLog records the boot's phases on the guest's clock, for /health:
// the host shows them while the machine starts and the benchmarks split
// the boot with them.
type bootLog struct {
	mu      sync.Mutex
	phases  []control.Phase
	running []control.Phase
}

// begin starts a phase now; the function it returns ends it.
func (b *bootLog) begin(name string) (end func()) {
	return b.beginAt(name, bootTime())
}

func (b *bootLog) beginAt(name string, start time.Duration) (end func()) {
	b.mu.Lock()
	b.running = append(b.running, control.Phase{Name: name, Start: control.Duration(start)})
	b.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { b.end(name, bootTime()) }) }
}

func (b *bootLog) end(name string, at time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, r := range b.running {
		if r.Name == name {
			r.End = control.Duration(at)
			b.phases = append(b.phases, r)
			b.running = append(b.running[:i], b.running[i+1:]...)
			return
		}
	}
}

// add records a phase that ended already.
func (b *bootLog) add(name string, start, end time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.phases = append(b.phases, control.Phase{Name: name, Start: control.Duration(start), End: control.Duration(end)})
}

func (b *bootLog) report() control.Boot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return control.Boot{Phases: append([]control.Phase(nil), b.phases...), Running: append([]control.Phase(nil), b.running...)}
}

// kernelLog is what the kernel's log says of the boot: when it unpacked
// the initramfs and when it ran /init (its records carry their time in
// microseconds since boot, quiet or not).
type kernelLog struct {
	unpackStart, unpackEnd, runInit time.Duration
}

func readKernelLog() (k kernelLog) {
	// Raw reads: Go's poller would wait for the next record instead of
	// returning at the end of the log.
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return k
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf) // one record a read
		if err == unix.EPIPE {
			continue // overwritten while read: the next one
		}
		if err != nil || n <= 0 {
			return k
		}
		head, msg, found := strings.Cut(string(buf[:n]), ";")
		if !found {
			continue
		}
		f := strings.Split(head, ",")
		if len(f) < 3 {
			continue
		}
		us, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			continue
		}
		at := time.Duration(us) * time.Microsecond
		switch {
		case strings.HasPrefix(msg, "Trying to unpack rootfs image as initramfs"):
			k.unpackStart = at
		case strings.HasPrefix(msg, "Freeing initrd memory"):
			k.unpackEnd = at
		case strings.HasPrefix(msg, "Run /init as init process"):
			k.runInit = at
		}
	}
}
