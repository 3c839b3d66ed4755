//go:build linux

package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/runtime/fsutil"
)

// engineID returns the engine's stable ID (shown as ID in /info), creating it
// on first start.
func engineID(root string) (string, error) {
	p := filepath.Join(root, "engine-id")
	b, err := os.ReadFile(p)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("engine id: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	if err := fsutil.WriteFileAtomic(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("engine id: %w", err)
	}
	return id, nil
}
