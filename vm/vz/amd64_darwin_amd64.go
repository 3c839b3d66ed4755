package vz

import (
	"errors"

	vz "github.com/Code-Hex/vz/v3"
)

// Rosetta and saved states exist only on Apple silicon.

const rosettaTag = ""

func rosettaDevice() (vz.DirectorySharingDeviceConfiguration, error) { return nil, nil }

func restore(*vz.VirtualMachine, *vz.VirtualMachineConfiguration, string) error {
	return errors.New("saved states need Apple silicon")
}
