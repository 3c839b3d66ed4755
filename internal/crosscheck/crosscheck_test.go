package crosscheck

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func moduleRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestCatchesDarwinError: a type error put in a darwin-only file of the
// repository (through an overlay, the file on disk is untouched) fails the
// check with its position, next to a cgo file whose C names are accepted.
func TestCatchesDarwinError(t *testing.T) {
	root := moduleRoot(t)
	darwinFiles, _ := filepath.Glob(filepath.Join(root, "vm", "vz", "*_darwin.go"))
	if len(darwinFiles) == 0 {
		t.Fatal("no darwin files in vm/vz")
	}
	target := darwinFiles[0]
	src, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	pkgName := packageClause(t, src)
	cgoFile := filepath.Join(filepath.Dir(target), "zz_cgo_overlay_darwin.go")
	cgo := "package " + pkgName + "\n\n// int answer(void) { return 42; }\nimport \"C\"\n\nfunc answer() int { return int(C.answer()) }\n"
	check := func(overlay map[string][]byte) *Result {
		t.Helper()
		res, err := Check(context.Background(), Options{Dir: root, GOOS: "darwin", GOARCH: "arm64",
			Patterns: []string{"./vm/vz"}, Overlay: overlay})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	clean := check(map[string][]byte{cgoFile: []byte(cgo)})
	if len(clean.Errors) != 0 {
		t.Fatalf("clean vm/vz (with a cgo file) has errors: %v", clean.Errors)
	}
	if clean.FromSource == 0 {
		t.Fatal("nothing was type-checked from source")
	}

	broken := append(append([]byte(nil), src...), "\nvar _ int = \"not an int\"\n"...)
	line := strings.Count(string(broken), "\n") // the line just added
	res := check(map[string][]byte{target: broken, cgoFile: []byte(cgo)})
	if len(res.Errors) != 1 {
		t.Fatalf("want exactly the deliberate error, got %v", res.Errors)
	}
	e := res.Errors[0]
	wantPos := target + ":" + strconv.Itoa(line) + ":"
	if !strings.HasPrefix(e.Pos, wantPos) || !strings.Contains(e.Msg, "cannot use") {
		t.Fatalf("error %q at %s, want a 'cannot use' error at %s…", e.Msg, e.Pos, wantPos)
	}
}

// TestForeignFilesOnly: the same error in a file for another OS is not
// seen, so the check really follows GOOS.
func TestForeignFilesOnly(t *testing.T) {
	root := moduleRoot(t)
	f := filepath.Join(root, "vm", "vz", "zz_overlay_windows.go")
	src, _ := os.ReadFile(filepath.Join(root, "vm", "vz", "doc.go"))
	overlay := map[string][]byte{f: []byte("package " + packageClause(t, src) + "\n\nvar _ int = \"x\"\n")}
	res, err := Check(context.Background(), Options{Dir: root, GOOS: "darwin", GOARCH: "arm64",
		Patterns: []string{"./vm/vz"}, Overlay: overlay})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 {
		t.Fatalf("a windows file was checked for darwin: %v", res.Errors)
	}
	res, err = Check(context.Background(), Options{Dir: root, GOOS: "windows", GOARCH: "amd64",
		Patterns: []string{"./vm/vz"}, Overlay: overlay})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 {
		t.Fatalf("windows check of the windows file: %v", res.Errors)
	}
}

func packageClause(t *testing.T, src []byte) string {
	for _, l := range strings.Split(string(src), "\n") {
		if name, ok := strings.CutPrefix(l, "package "); ok {
			return strings.TrimSpace(name)
		}
	}
	t.Fatal("no package clause")
	return ""
}
