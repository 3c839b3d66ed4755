//go:build linux

package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/fsutil"
	"github.com/berth-dev/berth/runtime/snapshot"
)

// content is the blob store: manifests, configs and layer blobs, each in a
// file named by its sha256 digest. A blob is verified before it gets its
// name and written atomically, so a name always holds exactly its content.
type content struct {
	root string // …/blobs
}

func digestBytes(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func newContent(root string) (*content, error) {
	for _, d := range []string{"sha256", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, err
		}
	}
	// Ingests a crash interrupted.
	ents, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range ents {
		os.RemoveAll(filepath.Join(root, "tmp", e.Name()))
	}
	return &content{root: root}, nil
}

func (c *content) path(d string) string {
	return filepath.Join(c.root, "sha256", strings.TrimPrefix(d, "sha256:"))
}

func (c *content) has(d string) bool {
	if !snapshot.ValidDigest(d) {
		return false
	}
	_, err := os.Stat(c.path(d))
	return err == nil
}

func (c *content) open(d string) (*os.File, error) {
	if !snapshot.ValidDigest(d) {
		return nil, errdefs.InvalidArgument("invalid digest %q", d)
	}
	f, err := os.Open(c.path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("blob %s not found", d)
	}
	return f, err
}

func (c *content) size(d string) (int64, error) {
	st, err := os.Stat(c.path(d))
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// read returns a small blob (a manifest or config).
func (c *content) read(d string) ([]byte, error) {
	f, err := c.open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// put stores data under its digest, which must be want when want is set.
func (c *content) put(want string, data []byte) (string, error) {
	got := digestBytes(data)
	if want != "" && got != want {
		return "", errdefs.InvalidArgument("blob digest mismatch: got %s, want %s", got, want)
	}
	if c.has(got) {
		return got, nil
	}
	if err := fsutil.WriteFileAtomic(c.path(got), data, 0o600); err != nil {
		return "", fmt.Errorf("store blob %s: %w", got, err)
	}
	return got, nil
}

func (c *content) remove(d string) error {
	if !snapshot.ValidDigest(d) {
		return nil
	}
	if err := os.Remove(c.path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (c *content) list() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(c.root, "sha256"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if d := "sha256:" + e.Name(); snapshot.ValidDigest(d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// ingest is a blob being written: bytes go (buffered) to a temp file and a
// hash; commit gives the file its name once the digest is known to be right.
type ingest struct {
	c    *content
	f    *os.File
	bw   *bufio.Writer
	h    hash.Hash // nil: the reader feeding the ingest verifies the digest
	n    int64
	done bool
}

func (c *content) newIngest() (*ingest, error) {
	f, err := os.CreateTemp(filepath.Join(c.root, "tmp"), "ingest-")
	if err != nil {
		return nil, err
	}
	return &ingest{c: c, f: f, bw: bufio.NewWriterSize(f, 1<<20), h: sha256.New()}, nil
}

// newVerifiedIngest is an ingest for a stream whose reader already checks
// its digest at EOF (go-containerregistry's blob readers do), so the bytes
// are not hashed twice; commit must be given the digest.
func (c *content) newVerifiedIngest() (*ingest, error) {
	w, err := c.newIngest()
	if err == nil {
		w.h = nil
	}
	return w, err
}

func (w *ingest) Write(p []byte) (int, error) {
	n, err := w.bw.Write(p)
	if w.h != nil {
		w.h.Write(p[:n])
	}
	w.n += int64(n)
	return n, err
}

func (w *ingest) digest() string { return "sha256:" + hex.EncodeToString(w.h.Sum(nil)) }

// close flushes and closes the temp file, leaving it in place.
func (w *ingest) close() error {
	if err := w.bw.Flush(); err != nil {
		w.f.Close()
		return err
	}
	return w.f.Close()
}

// commit verifies the content against want (when set), syncs it and moves
// it into place. It returns the digest.
func (w *ingest) commit(want string) (string, error) {
	d := want
	if w.h != nil {
		d = w.digest()
	}
	if d == "" || (want != "" && d != want) {
		w.discard()
		return "", errdefs.InvalidArgument("blob digest mismatch: got %s, want %s", d, want)
	}
	if err := w.bw.Flush(); err != nil {
		w.discard()
		return "", err
	}
	if err := w.f.Sync(); err != nil {
		w.discard()
		return "", err
	}
	if err := w.f.Close(); err != nil {
		w.discard()
		return "", err
	}
	if err := os.Rename(w.f.Name(), w.c.path(d)); err != nil {
		w.discard()
		return "", err
	}
	w.done = true
	return d, nil
}

// discard drops an ingest that was not committed; safe to call twice.
func (w *ingest) discard() {
	if !w.done {
		w.f.Close()
		os.Remove(w.f.Name())
		w.done = true
	}
}

// adopt moves a file already hashed to digest d (a spooled archive entry in
// the temp directory) into the store.
func (c *content) adopt(p, d string) error {
	if !snapshot.ValidDigest(d) {
		return errdefs.InvalidArgument("invalid digest %q", d)
	}
	if c.has(d) {
		return os.Remove(p)
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	return os.Rename(p, c.path(d))
}
