package pid1

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/runtime/fsutil"
)

// Images bundled in the initramfs (docker-archive tars, e.g. berth/hello)
// are loaded into the engine once per content: a marker on the data disk
// records the sha256 of each tar loaded, so a new bundle loads again and a
// user's later `docker rmi` is not undone at every boot.
const (
	imagesDir  = "/usr/share/berth/images"
	preloadDir = dataDir + "/berth-preloaded"
)

func (p *Init) preloadImages() {
	tars, _ := filepath.Glob(filepath.Join(imagesDir, "*.tar"))
	for _, t := range tars {
		if err := preload(t); err != nil {
			p.log.Warn("preload image", "tar", t, "err", err)
		} else {
			p.log.Debug("preloaded image", "tar", t)
		}
	}
}

func preload(tar string) error {
	f, err := os.Open(tar)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	marker := filepath.Join(preloadDir, filepath.Base(tar)+".sha256")
	if b, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(b)) == sum {
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", engineSocket)
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://engine/images/load?quiet=1", f)
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("load %s: %w", tar, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("load %s: %s: %s", tar, resp.Status, body)
	}
	// The load answer is a JSON message stream; an error is in errorDetail.
	dec := json.NewDecoder(strings.NewReader(string(body)))
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			break
		}
		if m.Error != "" {
			return fmt.Errorf("load %s: %s", tar, m.Error)
		}
	}
	if err := os.MkdirAll(preloadDir, 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(marker, []byte(sum+"\n"), 0o644)
}
