package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

func TestBootProgress(t *testing.T) {
	var out bytes.Buffer
	p := newBootProgress(&out)
	old := []hostapi.BootPhase{{Name: "kernel", EndMS: 900}}
	// A restart: the running machine's status, then the stop, carry the
	// last boot's phases; they are not this start's.
	p.update(hostapi.Status{State: hostapi.Running, Boot: old})
	p.update(hostapi.Status{State: hostapi.Stopping, Boot: old})
	if out.Len() != 0 {
		t.Fatalf("printed before the start: %q", out.String())
	}
	p.update(hostapi.Status{State: hostapi.Starting, Boot: []hostapi.BootPhase{{Name: "vm", EndMS: 300, Running: true}}})
	p.update(hostapi.Status{State: hostapi.Starting, Boot: []hostapi.BootPhase{
		{Name: "vm", EndMS: 210}, {Name: "kernel", StartMS: 210, EndMS: 1250},
		{Name: "disk", StartMS: 1300, EndMS: 1350}, {Name: "modules", StartMS: 1290, EndMS: 1330},
		{Name: "engine-start", StartMS: 1310, Running: true, EndMS: 1400}}})
	p.done(hostapi.Status{State: hostapi.Running, Boot: []hostapi.BootPhase{
		{Name: "vm", EndMS: 210}, {Name: "kernel", StartMS: 210, EndMS: 1250}, {Name: "modules", StartMS: 1290, EndMS: 1330},
		{Name: "disk", StartMS: 1300, EndMS: 1350}, {Name: "engine-start", StartMS: 1310, EndMS: 1700}, {Name: "ready", StartMS: 1800, EndMS: 1900}}})
	got := out.String()
	for _, want := range []string{
		"  … Starting the virtual machine\r\033[K",
		"  Starting the virtual machine  0.21 s\n  Booting Linux                 1.04 s\n  Loading drivers               0.04 s\n  Mounting the data disk        0.05 s\n  … Starting the engine\r\033[K",
		"  Starting the engine           0.39 s\n  Checking the machine          0.10 s\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in:\n%q", want, got)
		}
	}
	if strings.Count(got, "Booting Linux") != 1 || !strings.HasSuffix(got, "\n") {
		t.Errorf("each phase once, ending on a fresh line:\n%q", got)
	}
}
