//go:build linux

// Package snapshot keeps image layers unpacked on disk, one directory per
// layer chain, and assembles container root filesystems from them with
// overlayfs. A layer shared by several images is unpacked once. Unpacking
// is the security boundary for image content: see unpack.go.
//
// Layout under the store's root:
//
//	layers/<chain-hex>/diff       the layer's own files (whiteouts as 0/0 devices)
//	layers/<chain-hex>/meta.json  Layer
//	l/<link>                      short symlink to ../layers/<chain-hex>/diff, so
//	                              overlay's mount options stay under a page
//	keys/<key>/{diff,work,merged} one writable overlay per container or build step
//	keys/<key>/meta.json          keyMeta
//	empty/                        the lower layer of an image with no layers
//
// A layer or key directory appears under its final name only complete
// (built in a .tmp- directory, synced, renamed), so a crash never leaves a
// half-unpacked layer looking usable; Open sweeps the leftovers.
package snapshot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/fsutil"
	"github.com/berth-dev/berth/runtime/keylock"
)

// Store is the on-disk layer and rootfs store under one root directory.
// It is safe for concurrent use.
type Store struct {
	root   string
	chains keylock.Map // per chain ID: Apply
	keys   keylock.Map // per key: Prepare, Unmount, Remove
	gc     sync.RWMutex
}

// Layer describes one unpacked layer.
type Layer struct {
	ChainID string    `json:"chainID"`
	Parent  string    `json:"parent,omitempty"` // chain ID below this one
	DiffID  string    `json:"diffID"`
	Size    int64     `json:"size"` // bytes of file content in this layer
	Link    string    `json:"link"` // name under l/
	Created time.Time `json:"created"`
}

type keyMeta struct {
	Key     string    `json:"key"`
	ChainID string    `json:"chainID"`
	Created time.Time `json:"created"`
}

// Open creates or reopens the store at root and removes what a crash left
// half done.
func Open(root string) (*Store, error) {
	for _, d := range []string{"layers", "l", "keys", "empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshot store: %w", err)
		}
	}
	s := &Store{root: root}
	for _, d := range []string{"layers", "keys"} {
		ents, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			return nil, fmt.Errorf("snapshot store: %w", err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				os.RemoveAll(filepath.Join(root, d, e.Name()))
			}
		}
	}
	// Links whose layer never landed (crash between link and rename).
	links, _ := os.ReadDir(filepath.Join(root, "l"))
	for _, l := range links {
		p := filepath.Join(root, "l", l.Name())
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			os.Remove(p)
		}
	}
	return s, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// ChainID is the chain ID of diffID applied over parent ("" for the first
// layer), as the OCI image spec defines it.
func ChainID(parent, diffID string) string {
	if parent == "" {
		return diffID
	}
	sum := sha256.Sum256([]byte(parent + " " + diffID))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ValidDigest says whether d is "sha256:" and 64 lowercase hex digits, the
// only digests the stores here name layers and blobs by.
func ValidDigest(d string) bool {
	return digest.Digest(d).Validate() == nil && digest.Digest(d).Algorithm() == digest.SHA256 // Algorithm panics on a digest Validate refuses
}

func checkDigest(what, d string) error {
	if !ValidDigest(d) {
		return errdefs.InvalidArgument("invalid %s %q: want sha256:<64 hex digits>", what, d)
	}
	return nil
}

func (s *Store) layerDir(chainID string) string {
	return filepath.Join(s.root, "layers", strings.TrimPrefix(chainID, "sha256:"))
}

// Has reports whether chainID is unpacked.
func (s *Store) Has(chainID string) bool {
	if checkDigest("chain ID", chainID) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.layerDir(chainID), "meta.json"))
	return err == nil
}

// Layer returns the layer with chainID.
func (s *Store) Layer(chainID string) (Layer, error) {
	var l Layer
	if err := checkDigest("chain ID", chainID); err != nil {
		return l, err
	}
	b, err := os.ReadFile(filepath.Join(s.layerDir(chainID), "meta.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return l, errdefs.NotFound("layer %s not found", chainID)
	}
	if err != nil {
		return l, fmt.Errorf("layer %s: %w", chainID, err)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("layer %s: %w", chainID, err)
	}
	return l, nil
}

// Chain returns the layers of chainID, bottom first ("" gives none).
func (s *Store) Chain(chainID string) ([]Layer, error) {
	var out []Layer
	for id := chainID; id != ""; {
		l, err := s.Layer(id)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
		id = l.Parent
		if len(out) > maxLayers {
			return nil, fmt.Errorf("layer chain %s: more than %d layers", chainID, maxLayers)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// LayerDirs returns the directories holding each layer of chainID's own
// files, bottom first (shown as GraphDriver data by inspect).
func (s *Store) LayerDirs(chainID string) ([]string, error) {
	chain, err := s.Chain(chainID)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, len(chain))
	for i, l := range chain {
		dirs[i] = filepath.Join(s.layerDir(l.ChainID), "diff")
	}
	return dirs, nil
}

// Apply unpacks the uncompressed layer tar r over parentChainID and returns
// the new chain ID. The tar's digest must be diffID. The parent need not be
// unpacked yet (layers of one image may be applied concurrently), but must be
// before the chain is mounted. Applying a chain that exists returns at once
// without reading r; concurrent calls for one chain unpack it once. GC does
// not wait for an Apply in progress: until the caller has recorded the
// chain somewhere GC's keep list comes from, it must keep it in that list
// (the image store leases the chains of a pull).
func (s *Store) Apply(ctx context.Context, parentChainID, diffID string, r io.Reader) (string, error) {
	if err := checkDigest("diff ID", diffID); err != nil {
		return "", err
	}
	if parentChainID != "" {
		if err := checkDigest("parent chain ID", parentChainID); err != nil {
			return "", err
		}
	}
	chainID := ChainID(parentChainID, diffID)
	unlock := s.chains.Lock(chainID)
	defer unlock()
	if s.Has(chainID) {
		return chainID, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "layers"), ".tmp-")
	if err != nil {
		return "", fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	if err := os.Mkdir(filepath.Join(tmp, "diff"), 0o755); err != nil {
		return "", fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	h := sha256.New()
	tee := io.TeeReader(ctxReader{ctx, r}, h)
	size, err := Unpack(filepath.Join(tmp, "diff"), tee)
	if err != nil {
		return "", fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	// The digest covers the whole stream, including tar's trailing padding.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return "", errdefs.InvalidArgument("apply layer: content digest %s does not match diff ID %s", got, diffID)
	}
	link, err := s.newLink(chainID)
	if err != nil {
		return "", fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	meta := Layer{ChainID: chainID, Parent: parentChainID, DiffID: diffID, Size: size, Link: link, Created: time.Now().UTC()}
	if err := writeJSON(filepath.Join(tmp, "meta.json"), meta); err != nil {
		os.Remove(filepath.Join(s.root, "l", link))
		return "", fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	if err := syncDir(tmp); err != nil {
		os.Remove(filepath.Join(s.root, "l", link))
		return "", fmt.Errorf("apply layer %s: sync: %w", diffID, err)
	}
	s.gc.RLock() // not in the middle of a GC's listing
	err = os.Rename(tmp, s.layerDir(chainID))
	s.gc.RUnlock()
	if err != nil {
		os.Remove(filepath.Join(s.root, "l", link))
		return "", fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	syncPath(filepath.Join(s.root, "layers"))
	return chainID, nil
}

// newLink makes a short random name under l/ pointing at chainID's diff.
func (s *Store) newLink(chainID string) (string, error) {
	target := filepath.Join("..", "layers", strings.TrimPrefix(chainID, "sha256:"), "diff")
	for range 10 {
		var b [8]byte
		rand.Read(b[:])
		name := base32.StdEncoding.EncodeToString(b[:])[:linkLen]
		err := os.Symlink(target, filepath.Join(s.root, "l", name))
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no free link name")
}

// linkLen is the length of a layer's short name: 60 random bits, and short
// enough that lowerdir stays under a page for maxLayers layers.
const linkLen = 12

// maxLayers bounds a chain: each lower costs len("l/")+linkLen+1 bytes of
// the one-page mount data; 200 layers fit with room for upper and work dirs.
const maxLayers = 200

// Layers lists every unpacked layer.
func (s *Store) Layers() ([]Layer, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	var out []Layer
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		l, err := s.Layer("sha256:" + e.Name())
		if err != nil {
			continue // not a layer (or torn by hand): GC removes it
		}
		out = append(out, l)
	}
	return out, nil
}

// GC removes every layer that is neither in a chain named in keep nor below
// a key's rootfs, and returns the chain IDs removed.
func (s *Store) GC(keep []string) ([]string, error) {
	s.gc.Lock()
	defer s.gc.Unlock()
	layers, err := s.Layers()
	if err != nil {
		return nil, err
	}
	byID := map[string]Layer{}
	for _, l := range layers {
		byID[l.ChainID] = l
	}
	live := map[string]bool{}
	mark := func(id string) {
		for id != "" && !live[id] {
			live[id] = true
			id = byID[id].Parent
		}
	}
	for _, id := range keep {
		mark(id)
	}
	keys, err := s.keyMetas()
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		mark(k.ChainID)
	}
	var removed []string
	for _, l := range layers {
		if live[l.ChainID] {
			continue
		}
		if err := s.removeLayer(l); err != nil {
			return removed, err
		}
		removed = append(removed, l.ChainID)
	}
	// Directories that are not layers at all (a meta.json lost by hand).
	ents, _ := os.ReadDir(filepath.Join(s.root, "layers"))
	for _, e := range ents {
		if _, ok := byID["sha256:"+e.Name()]; !ok && !strings.HasPrefix(e.Name(), ".") {
			os.RemoveAll(filepath.Join(s.root, "layers", e.Name()))
		}
	}
	return removed, nil
}

func (s *Store) removeLayer(l Layer) error {
	dir := s.layerDir(l.ChainID)
	// Rename first so a crash mid-delete leaves a .tmp- dir Open sweeps,
	// not a layer with missing files.
	tmp := filepath.Join(s.root, "layers", ".tmp-del-"+filepath.Base(dir))
	if err := os.Rename(dir, tmp); err != nil {
		return fmt.Errorf("remove layer %s: %w", l.ChainID, err)
	}
	os.Remove(filepath.Join(s.root, "l", l.Link))
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove layer %s: %w", l.ChainID, err)
	}
	return nil
}

// keyRE is compiled on first use, not at package init: every container
// start re-executes this binary as the container's init, which runs all
// package initializers and never checks a key.
var keyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`) })

func (s *Store) keyDir(key string) string { return filepath.Join(s.root, "keys", key) }

func checkKey(key string) error {
	if !keyRE().MatchString(key) {
		return errdefs.InvalidArgument("invalid snapshot key %q", key)
	}
	return nil
}

// Prepare creates (or, after an agent restart, re-mounts) the writable
// overlay for key over chainID ("" for an image with no layers) and returns
// its mount point. Preparing a mounted key again returns the same path; a
// key prepared over another chain is a Conflict.
func (s *Store) Prepare(key, chainID string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if chainID != "" {
		if err := checkDigest("chain ID", chainID); err != nil {
			return "", err
		}
	}
	unlock := s.keys.Lock(key)
	defer unlock()
	s.gc.RLock()
	defer s.gc.RUnlock()
	dir := s.keyDir(key)
	merged := filepath.Join(dir, "merged")
	meta, err := s.keyMeta(key)
	switch {
	case err == nil:
		if meta.ChainID != chainID {
			return "", errdefs.Conflict("snapshot %s exists over another image (layer %s)", key, meta.ChainID)
		}
	case errdefs.IsNotFound(err):
		if err := s.createKey(key, chainID); err != nil {
			return "", err
		}
	default:
		return "", err
	}
	if ok, _ := isMountPoint(merged); ok {
		return merged, nil
	}
	if err := s.mount(key, chainID); err != nil {
		return "", err
	}
	return merged, nil
}

func (s *Store) createKey(key, chainID string) error {
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "keys"), ".tmp-")
	if err != nil {
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"diff", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			return fmt.Errorf("prepare %s: %w", key, err)
		}
	}
	if err := writeJSON(filepath.Join(tmp, "meta.json"), keyMeta{Key: key, ChainID: chainID, Created: time.Now().UTC()}); err != nil {
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	if err := os.Rename(tmp, s.keyDir(key)); err != nil {
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	syncPath(filepath.Join(s.root, "keys"))
	return nil
}

func (s *Store) mount(key, chainID string) error {
	chain, err := s.Chain(chainID)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", key, err)
	}
	// lowerdir lists the top layer first; paths are relative to the store
	// root (see mountOverlay) so many layers fit in the one-page option string.
	lowers := make([]string, 0, len(chain))
	for i := len(chain) - 1; i >= 0; i-- {
		lowers = append(lowers, "l/"+chain[i].Link)
	}
	if len(lowers) == 0 {
		lowers = append(lowers, "empty")
	}
	kd := filepath.Join("keys", key)
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s/diff,workdir=%s/work,index=off", strings.Join(lowers, ":"), kd, kd)
	if len(data) >= unix.Getpagesize() {
		return errdefs.InvalidArgument("prepare %s: image has too many layers (%d) for overlayfs", key, len(chain))
	}
	if err := mountOverlay(s.root, filepath.Join(s.keyDir(key), "merged"), data); err != nil {
		return fmt.Errorf("prepare %s: mount overlay: %w", key, err)
	}
	return nil
}

func (s *Store) keyMeta(key string) (keyMeta, error) {
	var m keyMeta
	b, err := os.ReadFile(filepath.Join(s.keyDir(key), "meta.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return m, errdefs.NotFound("no snapshot %s", key)
	}
	if err != nil {
		return m, fmt.Errorf("snapshot %s: %w", key, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("snapshot %s: %w", key, err)
	}
	return m, nil
}

func (s *Store) keyMetas() ([]keyMeta, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "keys"))
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []keyMeta
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		m, err := s.keyMeta(e.Name())
		if err != nil {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// GraphData is key's overlay directories as inspect shows them under
// GraphDriver.Data, as dockerd's overlay2 names them: LowerDir (the image's
// layers, top first), UpperDir, WorkDir and MergedDir.
func (s *Store) GraphData(key string) (map[string]string, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	meta, err := s.keyMeta(key)
	if err != nil {
		return nil, err
	}
	dir := s.keyDir(key)
	data := map[string]string{"UpperDir": filepath.Join(dir, "diff"), "WorkDir": filepath.Join(dir, "work"), "MergedDir": filepath.Join(dir, "merged")}
	if meta.ChainID != "" {
		dirs, err := s.LayerDirs(meta.ChainID)
		if err != nil {
			return nil, err
		}
		slices.Reverse(dirs)
		data["LowerDir"] = strings.Join(dirs, ":")
	}
	return data, nil
}

// Mountpoint is where key's rootfs is (or would be) mounted.
func (s *Store) Mountpoint(key string) string { return filepath.Join(s.keyDir(key), "merged") }

// Unmount unmounts key's rootfs and keeps its writable layer.
func (s *Store) Unmount(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	unlock := s.keys.Lock(key)
	defer unlock()
	return s.unmount(key)
}

func (s *Store) unmount(key string) error {
	merged := filepath.Join(s.keyDir(key), "merged")
	for i := 0; ; i++ {
		ok, err := isMountPoint(merged)
		if err != nil || !ok {
			return nil
		}
		err = unix.Unmount(merged, 0)
		if err == nil || err == unix.EINVAL || err == unix.ENOENT {
			continue // unmounted (stacked mounts are peeled one by one)
		}
		if err == unix.EBUSY && i < 20 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// Still busy (a process holds it): detach, the kernel frees it later.
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", key, err)
		}
	}
}

// Remove unmounts key's rootfs and deletes its writable layer. Removing a
// key that does not exist is not an error.
func (s *Store) Remove(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	unlock := s.keys.Lock(key)
	defer unlock()
	dir := s.keyDir(key)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := s.unmount(key); err != nil {
		return err
	}
	tmp := filepath.Join(s.root, "keys", ".tmp-del-"+key)
	if err := os.Rename(dir, tmp); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	return nil
}

// Keys lists the prepared keys with the chain each stands on.
func (s *Store) Keys() (map[string]string, error) {
	ms, err := s.keyMetas()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[m.Key] = m.ChainID
	}
	return out, nil
}

// Usage is the disk space key's writable layer uses, in bytes.
func (s *Store) Usage(key string) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	return dirSize(filepath.Join(s.keyDir(key), "diff"))
}

func dirSize(dir string) (int64, error) {
	var n int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		n += info.Size()
		return nil
	})
	return n, err
}

func writeJSON(path string, v any) error { return fsutil.WriteJSONAtomic(path, v, 0o600) }

// syncDir flushes the file system holding dir, so everything just unpacked
// there is on disk before it is renamed into place.
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

func syncPath(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// ctxReader stops a long unpack when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
