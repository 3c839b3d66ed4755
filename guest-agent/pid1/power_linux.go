package pid1

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"time"
)

// Linux input events (struct input_event on 64-bit: timeval, type, code,
// value) and the codes of the power button.
const (
	inputEventSize = 24
	evKey          = 1
	keyPower       = 116
)

// watchPowerButton turns KEY_POWER on any input device (the ACPI power
// button: QMP system_powerdown, a host's "shut down") into a clean
// shutdown. Devices appear as their drivers probe, so it looks twice.
func (p *Init) watchPowerButton() {
	seen := map[string]bool{}
	for _, wait := range []time.Duration{0, time.Second, 5 * time.Second} {
		time.Sleep(wait)
		m, _ := filepath.Glob("/dev/input/event*")
		for _, dev := range m {
			if seen[dev] {
				continue
			}
			seen[dev] = true
			go p.readInput(dev)
		}
	}
}

func (p *Init) readInput(dev string) {
	f, err := os.Open(dev)
	if err != nil {
		p.log.Debug("input", "device", dev, "err", err)
		return
	}
	defer f.Close()
	buf := make([]byte, inputEventSize*16)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+inputEventSize <= n; off += inputEventSize {
			ev := buf[off : off+inputEventSize]
			typ := binary.NativeEndian.Uint16(ev[16:])
			code := binary.NativeEndian.Uint16(ev[18:])
			val := int32(binary.NativeEndian.Uint32(ev[20:]))
			if typ == evKey && code == keyPower && val == 1 {
				p.log.Info("power button")
				p.Shutdown()
			}
		}
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
