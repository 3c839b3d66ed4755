package desktop

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// SettingsView is what the Settings form shows.
type SettingsView struct {
	Settings config.Settings `json:"settings"`
	Limits   config.Limits   `json:"limits"`
	// RestartRequired: the saved settings differ from what the running
	// machine uses; they apply at the next restart.
	RestartRequired bool `json:"restartRequired"`
	// Hostd: the settings came from (and save through) the host agent.
	Hostd bool   `json:"hostd"`
	Path  string `json:"path"` // the settings file
}

// SaveResult is a save's outcome: the saved view, or the field errors
// (nothing was saved then).
type SaveResult struct {
	View   SettingsView         `json:"view"`
	Fields []*config.FieldError `json:"fields,omitempty"`
}

// Settings is the Settings view's service. Saving goes through hostd when
// it runs (it knows what the running machine uses), else to the file.
type Settings struct{ b *Backend }

// Get returns the saved settings and what this host allows.
func (s *Settings) Get() (SettingsView, error) {
	b := s.b
	ctx, cancel := b.opCtx(10 * time.Second)
	defer cancel()
	resp, err := b.hostd.Settings(ctx)
	if err == nil {
		return SettingsView{Settings: resp.Settings, Limits: resp.Limits, RestartRequired: resp.RestartRequired,
			Hostd: true, Path: b.paths.ConfigFile()}, nil
	}
	if !errors.Is(err, hostapi.ErrNotRunning) {
		return SettingsView{}, fmt.Errorf("read settings from the host agent: %w", err)
	}
	st, err := config.Load(b.paths)
	if err != nil {
		return SettingsView{}, err
	}
	return SettingsView{Settings: st, Limits: hostLimits(), Path: b.paths.ConfigFile()}, nil
}

// Save validates and saves st; field problems come back in Fields.
func (s *Settings) Save(st config.Settings) (SaveResult, error) {
	b := s.b
	ctx, cancel := b.opCtx(30 * time.Second)
	defer cancel()
	resp, err := b.hostd.SaveSettings(ctx, st)
	switch {
	case err == nil:
		b.applyStartAtLogin(resp.Settings.StartAtLogin)
		return SaveResult{View: SettingsView{Settings: resp.Settings, Limits: resp.Limits,
			RestartRequired: resp.RestartRequired, Hostd: true, Path: b.paths.ConfigFile()}}, nil
	case errors.Is(err, hostapi.ErrNotRunning):
		if err := config.Save(b.paths, st, hostLimits()); err != nil {
			var verr config.ValidationError
			if errors.As(err, &verr) {
				return SaveResult{Fields: verr}, nil
			}
			return SaveResult{}, fmt.Errorf("save settings: %w", err)
		}
		b.applyStartAtLogin(st.StartAtLogin)
		v, err := s.Get()
		return SaveResult{View: v}, err
	default:
		var api *hostapi.APIError
		if errors.As(err, &api) && len(api.Fields) > 0 {
			return SaveResult{Fields: api.Fields}, nil
		}
		return SaveResult{}, fmt.Errorf("save settings: %w", err)
	}
}

// Reset saves the defaults.
func (s *Settings) Reset() (SaveResult, error) { return s.Save(config.Defaults()) }

// applyStartAtLogin keeps the login item in step with the setting; a
// failure is logged, not fatal to the save.
func (b *Backend) applyStartAtLogin(on bool) {
	if err := setStartAtLogin(on); err != nil {
		b.log.Warn("start at login", "on", on, "err", err)
	}
}

// hostLimits are this machine's bounds when no hostd says otherwise: all
// its CPUs, its memory less 1 GiB for the host, the drivers built for it.
func hostLimits() config.Limits {
	lim := config.Limits{MaxCPUs: runtime.NumCPU(), MaxMemoryMiB: int(totalMemory()>>20) - 1024}
	if lim.MaxMemoryMiB < 512 {
		lim.MaxMemoryMiB = 512
	}
	switch runtime.GOOS {
	case "darwin":
		lim.Drivers = []string{"vz", "qemu"}
	case "windows":
		lim.Drivers = []string{"wsl", "qemu"}
	default:
		lim.Drivers = []string{"qemu", "native"}
	}
	return lim
}
