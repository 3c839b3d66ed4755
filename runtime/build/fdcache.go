//go:build linux

package build

import (
	"strings"

	"golang.org/x/sys/unix"
)

// fdCacheSize bounds the directory fds a context unpack or a COPY keeps
// open: a context of 10,000 directories must not hold 10,000 descriptors
// (the engine's limit is shared by every request it serves).
const fdCacheSize = 64

// fdCache keeps directory fds by path, closing the least recently used
// beyond fdCacheSize. An fd from get or put stays valid until the next put.
type fdCache struct {
	m    map[string]*cachedFD
	tick uint64
}

type cachedFD struct {
	fd   int
	used uint64
}

func newFDCache() *fdCache { return &fdCache{m: map[string]*cachedFD{}} }

func (c *fdCache) get(k string) (int, bool) {
	e, ok := c.m[k]
	if !ok {
		return -1, false
	}
	c.tick++
	e.used = c.tick
	return e.fd, true
}

func (c *fdCache) put(k string, fd int) {
	if old, ok := c.m[k]; ok {
		unix.Close(old.fd)
	}
	if len(c.m) >= fdCacheSize {
		oldest, min := "", ^uint64(0)
		for p, e := range c.m {
			if e.used < min {
				oldest, min = p, e.used
			}
		}
		c.drop(oldest)
	}
	c.tick++
	c.m[k] = &cachedFD{fd: fd, used: c.tick}
}

func (c *fdCache) drop(k string) {
	if e, ok := c.m[k]; ok {
		unix.Close(e.fd)
		delete(c.m, k)
	}
}

// dropTree forgets k and every path below it.
func (c *fdCache) dropTree(k string) {
	for p := range c.m {
		if p == k || strings.HasPrefix(p, k+"/") || k == "" {
			c.drop(p)
		}
	}
}

func (c *fdCache) closeAll() {
	for p := range c.m {
		c.drop(p)
	}
}

func (c *fdCache) len() int { return len(c.m) }
