package hostagent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/app/config"
	"github.com/berth-dev/berth/runtime/fsutil"
)

// The docker CLI keeps contexts in CONFIG/contexts/meta/SHA256(NAME)/meta.json
// (CONFIG is $DOCKER_CONFIG or ~/.docker); `docker context use NAME`
// writes currentContext into CONFIG/config.json.

// DockerConfigDir is the docker CLI's config directory.
func DockerConfigDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker")
}

// ContextName is the docker context of the machine under p: "berth" for
// the default home, else one per home.
func ContextName(p config.Paths) string { return machineName(p) }

type contextMeta struct {
	Name      string                     `json:"Name"`
	Metadata  contextMetadata            `json:"Metadata"`
	Endpoints map[string]contextEndpoint `json:"Endpoints"`
}

type contextMetadata struct {
	Description string `json:"Description,omitempty"`
}

type contextEndpoint struct {
	Host          string `json:"Host"`
	SkipTLSVerify bool   `json:"SkipTLSVerify"`
}

func contextDir(configDir, name string) string {
	h := sha256.Sum256([]byte(name))
	return filepath.Join(configDir, "contexts", "meta", hex.EncodeToString(h[:]))
}

// WriteDockerContext creates (or points again) the docker context name at
// the engine socket host (unix://…). The current context is left alone.
func WriteDockerContext(configDir, name, host string) error {
	dir := contextDir(configDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("docker context %s: %w", name, err)
	}
	b, _ := json.Marshal(contextMeta{Name: name, Metadata: contextMetadata{Description: "Berth"},
		Endpoints: map[string]contextEndpoint{"docker": {Host: host}}})
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "meta.json"), b, 0o644); err != nil {
		return fmt.Errorf("docker context %s: %w", name, err)
	}
	return nil
}

// RemoveDockerContext deletes the docker context name (and unsets it as
// the current context).
func RemoveDockerContext(configDir, name string) error {
	if err := os.RemoveAll(contextDir(configDir, name)); err != nil {
		return err
	}
	if cur, _ := CurrentDockerContext(configDir); cur == name {
		return UseDockerContext(configDir, "")
	}
	return nil
}

// CurrentDockerContext is config.json's currentContext ("" for default).
func CurrentDockerContext(configDir string) (string, error) {
	cfg, err := readDockerConfig(configDir)
	if err != nil {
		return "", err
	}
	var cur string
	if raw, ok := cfg["currentContext"]; ok {
		json.Unmarshal(raw, &cur)
	}
	return cur, nil
}

// UseDockerContext makes name the docker CLI's current context ("" for
// default), keeping everything else in config.json as it is.
func UseDockerContext(configDir, name string) error {
	cfg, err := readDockerConfig(configDir)
	if err != nil {
		return err
	}
	if name == "" {
		delete(cfg, "currentContext")
	} else {
		cfg["currentContext"], _ = json.Marshal(name)
	}
	b, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(configDir, 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(configDir, "config.json"), append(b, '\n'), 0o600)
}

func readDockerConfig(configDir string) (map[string]json.RawMessage, error) {
	path := filepath.Join(configDir, "config.json")
	cfg := map[string]json.RawMessage{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON (left as it is): %w", path, err)
	}
	return cfg, nil
}

// ensureDockerContext keeps the machine's docker context pointing at its
// socket.
func (a *Agent) ensureDockerContext() error {
	dir := a.o.DockerConfig
	if dir == "-" {
		return nil
	}
	if dir == "" {
		dir = DockerConfigDir()
	}
	if dir == "" {
		return errors.New("no home directory for the docker CLI's config")
	}
	return WriteDockerContext(dir, ContextName(a.paths), a.paths.DockerHost())
}
