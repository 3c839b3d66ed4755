package setup

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

const runKey = `Software\Microsoft\Windows\CurrentVersion\Run`

// StartAtLogin sets or deletes the Run key value that starts exe (the
// desktop app) hidden when the user signs in.
func StartAtLogin(exe string, on bool) error {
	k, _, err := registry.CreateKey(registry.CURRENT_USER, runKey, registry.SET_VALUE|registry.QUERY_VALUE)
	if err != nil {
		return fmt.Errorf("start at login: %w", err)
	}
	defer k.Close()
	if !on {
		if err := k.DeleteValue("Berth"); err != nil && !errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf("start at login: %w", err)
		}
		return nil
	}
	if err := k.SetStringValue("Berth", runValue(exe)); err != nil {
		return fmt.Errorf("start at login: %w", err)
	}
	return nil
}

// CLIOnPath adds (or removes) exe's folder to the user's PATH
// (HKCU\Environment) and tells running programs; new terminals find
// berth.exe. It returns the folder.
func CLIOnPath(exe string, remove bool) (string, error) {
	dir := filepath.Dir(exe)
	k, err := registry.OpenKey(registry.CURRENT_USER, "Environment", registry.QUERY_VALUE|registry.SET_VALUE)
	if err != nil {
		return "", fmt.Errorf("user PATH: %w", err)
	}
	defer k.Close()
	cur, typ, err := k.GetStringValue("Path")
	if errors.Is(err, registry.ErrNotExist) {
		cur, typ = "", registry.EXPAND_SZ
	} else if err != nil {
		return "", fmt.Errorf("user PATH: %w", err)
	}
	var next string
	var changed bool
	if remove {
		next, changed = pathListRemove(cur, dir, ";", strings.EqualFold)
	} else {
		next, changed = pathListAdd(cur, dir, ";", strings.EqualFold)
	}
	if !changed {
		return dir, nil
	}
	if typ == registry.SZ {
		err = k.SetStringValue("Path", next)
	} else {
		err = k.SetExpandStringValue("Path", next)
	}
	if err != nil {
		return "", fmt.Errorf("user PATH: %w", err)
	}
	broadcastEnvironment()
	return dir, nil
}

// broadcastEnvironment tells top-level windows (Explorer, so new terminals)
// that the environment changed.
func broadcastEnvironment() {
	env, _ := syscall.UTF16PtrFromString("Environment")
	user32 := windows.NewLazySystemDLL("user32.dll")
	send := user32.NewProc("SendMessageTimeoutW")
	const hwndBroadcast, wmSettingChange, smtoAbortIfHung = 0xffff, 0x001a, 0x0002
	var result uintptr
	send.Call(hwndBroadcast, wmSettingChange, 0, uintptr(unsafe.Pointer(env)), smtoAbortIfHung, 5000, uintptr(unsafe.Pointer(&result)))
}

// dockerOnPath adds (or removes) the shipped docker CLI's folder to the
// user's PATH.
func dockerOnPath(exe string, remove bool) error {
	_, err := CLIOnPath(exe, remove)
	return err
}
