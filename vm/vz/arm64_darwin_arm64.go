package vz

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	vz "github.com/Code-Hex/vz/v3"

	"github.com/berth-dev/berth/vm/driver"
)

// rosettaTag is the virtiofs tag of the Rosetta share; the guest's PID 1
// mounts it and registers it with binfmt_misc for x86-64 binaries
// (berth.rosetta=TAG).
const rosettaTag = "rosetta"

// rosettaDevice shares Rosetta with the guest when macOS has it installed.
func rosettaDevice() (vz.DirectorySharingDeviceConfiguration, error) {
	switch vz.LinuxRosettaDirectoryShareAvailability() {
	case vz.LinuxRosettaAvailabilityInstalled:
	case vz.LinuxRosettaAvailabilityNotInstalled:
		return nil, errors.New("Rosetta is not installed (softwareupdate --install-rosetta)")
	default:
		return nil, errors.New("Rosetta for Linux needs macOS 13 or later")
	}
	share, err := vz.NewLinuxRosettaDirectoryShare()
	if err != nil {
		return nil, err
	}
	dev, err := vz.NewVirtioFileSystemDeviceConfiguration(rosettaTag)
	if err != nil {
		return nil, err
	}
	dev.SetDirectoryShare(share)
	return dev, nil
}

// restore brings back a saved state (paused) and resumes it.
func restore(vm *vz.VirtualMachine, cfg *vz.VirtualMachineConfiguration, path string) error {
	if ok, err := cfg.ValidateSaveRestoreSupport(); !ok || err != nil {
		return fmt.Errorf("this configuration cannot be restored: %v", err)
	}
	if err := vm.RestoreMachineStateFromURL(path); err != nil {
		return err
	}
	return vm.Resume()
}

// Suspend implements driver.Suspender (macOS 14 or later): the VM is
// paused, its state saved next to its disk, and stopped; the next Start
// resumes it in about a second instead of booting.
func (d *Driver) Suspend(ctx context.Context) error {
	d.mu.Lock()
	// Leaving Running takes d.mu (BeginStop, End), so the state cannot
	// change between the look and the mark.
	vm, m, done, state := d.vm, d.m, d.done, d.life.State()
	if vm == nil || state != driver.Running {
		d.mu.Unlock()
		return fmt.Errorf("suspend: machine is %s", state)
	}
	d.life.BeginStop()
	d.mu.Unlock()
	undo := func(err error) error {
		if vm.CanResume() {
			vm.Resume()
		}
		d.mu.Lock()
		if d.vm == vm {
			d.life.AbortStop()
		}
		d.mu.Unlock()
		return fmt.Errorf("suspend: %w", err)
	}

	if err := vm.Pause(); err != nil {
		return undo(fmt.Errorf("pause: %w", err))
	}
	saved := filepath.Join(m.StateDir, saveFile)
	tmp := saved + ".tmp"
	os.Remove(tmp)
	if err := vm.SaveMachineStateToPath(tmp); err != nil {
		os.Remove(tmp)
		return undo(fmt.Errorf("save: %w", err))
	}
	if err := os.Rename(tmp, saved); err != nil {
		os.Remove(tmp)
		return undo(err)
	}
	if err := vm.Stop(); err != nil {
		// The guest must not run on past the state just saved.
		os.Remove(saved)
		return undo(fmt.Errorf("stop after save: %w", err))
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("suspend: the VM did not stop: %w", ctx.Err())
	}
}

var _ driver.Suspender = (*Driver)(nil)
