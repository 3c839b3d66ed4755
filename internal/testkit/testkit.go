// Package testkit starts the real parts that Berth's tests drive: the
// berth-agent engine, an OCI registry, the stock docker CLI. Nothing here is
// a mock; tests that cannot run these parts here skip with the reason.
package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// T is the part of testing.TB the kit uses, so the benchmark program can
// drive the same helpers outside `go test`.
type T interface {
	Helper()
	Logf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Skip(args ...any)
	Failed() bool
	Cleanup(func())
	TempDir() string
}

// RequireRoot skips t unless the test runs as root: the engine creates
// namespaces, cgroups and mounts.
func RequireRoot(t T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the engine creates namespaces, cgroups and mounts")
	}
}

// RepoRoot is the module root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildMu  sync.Mutex
	builtDir string
)

// Binary returns the path of one of Berth's binaries (berth-agent, berth …).
// `make test` builds them into bin/ and sets BERTH_BIN; run alone, a test
// builds them here with the same flags as the Makefile.
func Binary(t T, name string) string {
	t.Helper()
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("BERTH_BIN=%s has no %s: %v", dir, name, err)
		}
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtDir == "" {
		d, err := os.MkdirTemp("", "berth-bin-")
		if err != nil {
			t.Fatal(err)
		}
		builtDir = d
	}
	p := filepath.Join(builtDir, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	cmd := exec.Command("make", "-s", "-C", RepoRoot(), "BIN="+builtDir, filepath.Join(builtDir, name))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return p
}
