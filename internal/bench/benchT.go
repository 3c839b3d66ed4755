package main

import (
	"fmt"
	"os"
)

// benchT lets the bench drive testkit outside `go test`: failures end the
// program after running cleanups.
type benchT struct {
	cleanups []func()
	dirs     []string
	failed   bool
}

func newBenchT() *benchT { return &benchT{} }

func (t *benchT) Helper()                           {}
func (t *benchT) Logf(format string, args ...any)   { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (t *benchT) Failed() bool                      { return t.failed }
func (t *benchT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *benchT) Fatal(args ...any)                 { t.die(fmt.Sprint(args...)) }
func (t *benchT) Fatalf(format string, args ...any) { t.die(fmt.Sprintf(format, args...)) }
func (t *benchT) Skip(args ...any)                  { t.die("skip: " + fmt.Sprint(args...)) }
func (t *benchT) Skipf(format string, args ...any)  { t.die("skip: " + fmt.Sprintf(format, args...)) }

func (t *benchT) TempDir() string {
	d, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.dirs = append(t.dirs, d)
	return d
}

func (t *benchT) die(msg string) {
	t.failed = true
	fmt.Fprintln(os.Stderr, "bench:", msg)
	t.cleanup()
	os.Exit(1)
}

func (t *benchT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
	for _, d := range t.dirs {
		os.RemoveAll(d)
	}
	t.dirs = nil
}
