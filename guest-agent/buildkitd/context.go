//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth-dev/berth/runtime/compression"
)

// maxDockerfile bounds a Dockerfile or .dockerignore read into memory.
const maxDockerfile = 16 << 20

// spoolContext writes an uploaded build context (a tar archive, in any of
// the compressions the Engine API allows) into dir as a plain tar, as the
// classic builder reads it: entries that climb out of the context are
// refused, .dockerignore applies (for API clients that send a whole
// folder), and a Dockerfile the client added from outside the context
// (".dockerfile.RANDOM", the docker CLI's convention, also named in
// .dockerignore) is taken out and returned apart.
func spoolContext(dir string, body io.Reader, dockerfile string) (file string, outside []byte, err error) {
	plain, done, err := compression.Decompress(body)
	if err != nil {
		return "", nil, fmt.Errorf("build context: %w", err)
	}
	defer done()
	raw, err := os.CreateTemp(dir, "context-raw-")
	if err != nil {
		return "", nil, err
	}
	defer os.Remove(raw.Name())
	defer raw.Close()
	var ignore []byte
	hasIgnore := false
	tr := tar.NewReader(plain)
	tw := tar.NewWriter(raw)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("build context: %w", err)
		}
		name, err := contextName(h.Name)
		if err != nil {
			return "", nil, err
		}
		h.Name = name
		var data []byte
		if name == ".dockerignore" || (name == dockerfile && strings.HasPrefix(name, ".dockerfile.")) {
			if h.Size > maxDockerfile {
				return "", nil, fmt.Errorf("build context: %s is larger than %d bytes", name, maxDockerfile)
			}
			if data, err = io.ReadAll(tr); err != nil {
				return "", nil, fmt.Errorf("build context: %w", err)
			}
			if name == ".dockerignore" {
				ignore, hasIgnore = data, true
			} else {
				outside = data
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return "", nil, err
		}
		if data != nil {
			_, err = tw.Write(data)
		} else {
			_, err = io.Copy(tw, tr)
		}
		if err != nil {
			return "", nil, fmt.Errorf("build context: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", nil, err
	}
	if !hasIgnore && outside == nil {
		if err := raw.Close(); err != nil {
			return "", nil, err
		}
		kept := raw.Name() + ".tar"
		return kept, nil, os.Rename(raw.Name(), kept)
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(ignore))
	if err != nil {
		return "", nil, fmt.Errorf("build context: .dockerignore: %w", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return "", nil, fmt.Errorf("build context: .dockerignore: %w", err)
	}
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return "", nil, err
	}
	out, err := os.CreateTemp(dir, "context-")
	if err != nil {
		return "", nil, err
	}
	defer func() {
		out.Close()
		if err != nil {
			os.Remove(out.Name())
		}
	}()
	tr, tw = tar.NewReader(raw), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, err
		}
		keep := h.Name == ".dockerignore" || (h.Name == dockerfile && outside == nil)
		if !keep {
			if h.Name == dockerfile && outside != nil {
				continue
			}
			skip, err := pm.MatchesOrParentMatches(h.Name)
			if err != nil {
				return "", nil, fmt.Errorf("build context: .dockerignore: %w", err)
			}
			if skip {
				continue
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return "", nil, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return "", nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", nil, err
	}
	return out.Name(), outside, out.Close()
}

// contextName cleans an entry name, refusing names that are absolute or
// climb out of the context.
func contextName(name string) (string, error) {
	clean := path.Clean("/" + strings.TrimPrefix(name, "./"))[1:]
	if strings.HasPrefix(name, "/") || name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || strings.HasSuffix(name, "/..") {
		return "", fmt.Errorf("build context: entry %q leads out of the context", name)
	}
	if clean == "" {
		clean = "."
	}
	return clean, nil
}
