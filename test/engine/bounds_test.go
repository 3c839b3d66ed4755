package engine_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// engineWatch samples an engine while hostile inputs run: its open fds and
// resident memory, and whether /_ping keeps answering.
type engineWatch struct {
	mu              sync.Mutex
	maxFDs          int
	pings, failures int
	slowest         time.Duration
	stop            chan struct{}
	done            chan struct{}
}

func watchEngine(t *testing.T, e imageEnv) *engineWatch {
	w := &engineWatch{stop: make(chan struct{}), done: make(chan struct{})}
	pid := e.agent.Pid()
	c := e.agent.HTTPClient()
	c.Timeout = 5 * time.Second
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			start := time.Now()
			resp, err := c.Get("http://berth/_ping")
			took := time.Since(start)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if resp != nil {
				resp.Body.Close()
			}
			w.mu.Lock()
			w.maxFDs = max(w.maxFDs, len(fds))
			w.pings++
			if !ok {
				w.failures++
			}
			w.slowest = max(w.slowest, took)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *engineWatch) end() {
	close(w.stop)
	<-w.done
}

// peakRSS is VmHWM of pid, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// gzipTar writes a gzip'd tar: build contexts that are small on the wire.
func gzipTar(t *testing.T, write func(tw *tar.Writer)) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	write(tw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func tarFileOf(tw *tar.Writer, name string, body []byte) {
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
	tw.Write(body)
}

// TestBuildBoundedInputs replays the small inputs that once took the engine
// down (issue 12): a context of 10,000 directories (one fd each until the
// unpack ended), hard links copied per link, nested variable expansions,
// `build -q` holding all output. The engine runs with 1024 descriptors;
// meanwhile it must keep answering and its memory stay bounded.
func TestBuildBoundedInputs(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", e.ref)
	pid := e.agent.Pid()
	lim := unix.Rlimit{Cur: 1024, Max: 1024}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatalf("limit the engine's descriptors: %v", err)
	}
	w := watchEngine(t, e)

	// 10,000 directories.
	dirs := gzipTar(t, func(tw *tar.Writer) {
		tarFileOf(tw, "Dockerfile", []byte("FROM "+e.ref+"\nCOPY . /ctx/\nRUN find /ctx -type d | wc -l\n"))
		for i := 0; i < 100; i++ {
			for j := 0; j < 100; j++ {
				tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%d/e%d/", i, j), Typeflag: tar.TypeDir, Mode: 0o755})
			}
		}
	})
	m, status := postBuild(t, e, "t=dirs", dirs)
	if status != 200 || m.err != "" || !strings.Contains(m.stream, "10101\n") {
		t.Errorf("10,000-directory context: %d %q\n%s", status, m.err, tail(m.stream))
	}

	// 1,000 hard links to a 256 KiB file: 256 MB if each became a copy.
	links := gzipTar(t, func(tw *tar.Writer) {
		tarFileOf(tw, "Dockerfile", []byte("FROM "+e.ref+"\nCOPY . /ctx/\nRUN stat -c %h /ctx/f && du -sk /ctx\n"))
		tarFileOf(tw, "f", make([]byte, 256<<10))
		for i := 0; i < 1000; i++ {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d", i), Typeflag: tar.TypeLink, Linkname: "f", Mode: 0o644})
		}
	})
	if len(links) > 64<<10 {
		t.Fatalf("the hard-link context takes %d bytes gzip'd", len(links))
	}
	m, status = postBuild(t, e, "t=links", links)
	if status != 200 || m.err != "" || !strings.Contains(m.stream, "1001\n") {
		t.Errorf("hard-link context: %d %q\n%s", status, m.err, tail(m.stream))
	}

	// Variables that multiply by 16 at each ARG (32 B → 512 MB at g).
	df := "FROM " + e.ref + "\nARG a=" + strings.Repeat("x", 32) + "\n"
	for _, v := range []string{"b", "c", "d", "e", "f", "g"} {
		prev := string(rune(v[0] - 1))
		df += "ARG " + v + "=" + strings.Repeat("$"+prev, 16) + "\n"
	}
	df += "RUN echo ${#g}\n"
	m, status = postBuild(t, e, "t=vars", gzipTar(t, func(tw *tar.Writer) { tarFileOf(tw, "Dockerfile", []byte(df)) }))
	if m.err == "" || !strings.Contains(m.err, "larger than 1 MiB") {
		t.Errorf("nested expansions (%d bytes of Dockerfile): %d %q", len(df), status, m.err)
	}

	// -q holds output back for a failure only, and only so much of it.
	loud := gzipTar(t, func(tw *tar.Writer) {
		tarFileOf(tw, "Dockerfile", []byte("FROM "+e.ref+"\nRUN yes 0123456789012345678901234567890123456789 | head -c 48000000; echo; echo last line; exit 3\n"))
	})
	resp, err := e.agent.HTTPClient().Post("http://berth/build?q=1", "application/x-tar", bytes.NewReader(loud))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(body) > 2<<20 || !bytes.Contains(body, []byte("bytes of earlier build output dropped")) ||
		!bytes.Contains(body, []byte("last line")) || !bytes.Contains(body, []byte(`"code":3`)) {
		t.Errorf("quiet build of 48 MB of output answered %d bytes: %s", len(body), tail(string(body)))
	}

	w.end()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("engine: %d pings (%d failed, slowest %v), at most %d fds, peak RSS %d MiB", w.pings, w.failures, w.slowest, w.maxFDs, peakRSS(t, pid)>>20)
	if w.failures > 0 || w.pings < 10 || w.slowest > 3*time.Second {
		t.Errorf("the engine stopped answering: %d of %d pings failed, slowest %v", w.failures, w.pings, w.slowest)
	}
	if w.maxFDs > 512 {
		t.Errorf("the engine held %d descriptors", w.maxFDs)
	}
	if rss := peakRSS(t, pid); rss > 300<<20 {
		t.Errorf("the engine's peak RSS was %d MiB", rss>>20)
	}
	if got := e.d.Must("run", "--rm", "dirs", "true"); got != "" {
		t.Errorf("run after the builds: %q", got)
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
