// Package crosscheck type-checks Go packages for another platform whose cgo
// cannot be compiled here (macOS: Wails, systray, Apple Virtualization).
//
// go/packages lists the package graph for the target GOOS/GOARCH without
// running cgo. Packages that use cgo, our own packages, and everything
// that imports either are type-checked from source with go/types and
// FakeImportC (every C.name is accepted, with an invalid type). The rest,
// pure Go, comes from export data the go command compiles for the target.
package crosscheck

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Options say what to check.
type Options struct {
	Dir      string   // the module to run in (default: the current directory)
	GOOS     string   // target OS, e.g. "darwin"
	GOARCH   string   // target architecture, e.g. "arm64"
	Tags     []string // build tags
	Patterns []string // packages, as for go build
	// Overlay replaces file contents by absolute path (go/packages' Overlay),
	// for the parser too.
	Overlay map[string][]byte
	// Tests: the packages' test files too.
	Tests bool
}

// Problem is a type error.
type Problem struct {
	Package string
	Pos     string // file:line:col
	Msg     string
	// Why an error in a dependency is ignored (empty when it is not).
	Why string
}

func (p Problem) String() string { return p.Pos + ": " + p.Msg }

// Result of a check.
type Result struct {
	FromSource int       // packages type-checked from source
	Errors     []Problem // these fail the check
	Ignored    []Problem // known false reports in dependencies, with the reason
}

// Check type-checks opts.Patterns for opts.GOOS/opts.GOARCH.
func Check(ctx context.Context, opts Options) (*Result, error) {
	env := append(os.Environ(), "GOOS="+opts.GOOS, "GOARCH="+opts.GOARCH, "CGO_ENABLED=1", "GOFLAGS=-mod=mod")
	var flags []string
	if len(opts.Tags) > 0 {
		flags = append(flags, "-tags="+strings.Join(opts.Tags, ","))
	}
	// No NeedTypes/NeedSyntax/NeedCompiledGoFiles: those would make the go
	// command run cgo, which needs the target's C toolchain.
	cfg := &packages.Config{
		Context:    ctx,
		Dir:        opts.Dir,
		Env:        env,
		BuildFlags: flags,
		Overlay:    opts.Overlay,
		Tests:      opts.Tests,
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports |
			packages.NeedDeps | packages.NeedModule,
	}
	roots, err := packages.Load(cfg, opts.Patterns...)
	if err != nil {
		return nil, fmt.Errorf("list %v for %s/%s: %w", opts.Patterns, opts.GOOS, opts.GOARCH, err)
	}
	var listErrs []error
	all := map[string]*packages.Package{}
	packages.Visit(roots, nil, func(p *packages.Package) {
		all[p.ID] = p
		for _, e := range p.Errors {
			if e.Kind == packages.ListError {
				listErrs = append(listErrs, fmt.Errorf("%s: %s", p.PkgPath, e.Msg))
			}
		}
	})
	if len(listErrs) > 0 {
		return nil, fmt.Errorf("list for %s/%s: %w", opts.GOOS, opts.GOARCH, errors.Join(listErrs...))
	}

	fromSource := map[string]bool{}
	var mark func(p *packages.Package) bool
	seen := map[string]bool{}
	mark = func(p *packages.Package) bool {
		if seen[p.ID] {
			return fromSource[p.ID]
		}
		seen[p.ID] = true
		src := isOurs(p) || usesCgo(p, opts.Overlay)
		for _, imp := range p.Imports {
			if mark(imp) {
				src = true
			}
		}
		fromSource[p.ID] = src
		return src
	}
	for _, p := range all {
		mark(p)
	}

	// Export data for the pure-Go rest, compiled by the go command.
	var exportPaths []string
	for id, src := range fromSource {
		// Test variants of packages are ours, from source; the rest are
		// plain packages whose ID is their path.
		if path := all[id].PkgPath; !src && path != "unsafe" && path != "C" {
			exportPaths = append(exportPaths, path)
		}
	}
	sort.Strings(exportPaths)
	exports := map[string]string{}
	if len(exportPaths) > 0 {
		ecfg := *cfg
		ecfg.Mode, ecfg.Tests = packages.NeedName|packages.NeedExportFile, false
		eps, err := packages.Load(&ecfg, exportPaths...)
		if err != nil {
			return nil, fmt.Errorf("compile dependencies for %s/%s: %w", opts.GOOS, opts.GOARCH, err)
		}
		for _, p := range eps {
			if p.ExportFile == "" {
				return nil, fmt.Errorf("compile %s for %s/%s: no export data (%v)", p.PkgPath, opts.GOOS, opts.GOARCH, p.Errors)
			}
			exports[p.PkgPath] = p.ExportFile
		}
	}

	fset := token.NewFileSet()
	gc := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	res := &Result{}
	checked := map[string]*types.Package{}
	sizes := types.SizesFor("gc", opts.GOARCH)
	var check func(p *packages.Package) (*types.Package, error)
	check = func(p *packages.Package) (*types.Package, error) {
		if tp, ok := checked[p.ID]; ok {
			return tp, nil
		}
		for _, imp := range p.Imports {
			if fromSource[imp.ID] {
				if _, err := check(imp); err != nil {
					return nil, err
				}
			}
		}
		files, err := parseFiles(fset, p, opts.Overlay)
		if err != nil {
			return nil, err
		}
		tc := &types.Config{
			FakeImportC: true,
			GoVersion:   goVersion(p),
			Sizes:       sizes,
			Importer: importerFunc(func(path string) (*types.Package, error) {
				if path == "unsafe" {
					return types.Unsafe, nil
				}
				ip, ok := p.Imports[path]
				if !ok {
					return nil, fmt.Errorf("%s does not import %s", p.PkgPath, path)
				}
				if fromSource[ip.ID] {
					return checked[ip.ID], nil
				}
				return gc.Import(ip.PkgPath)
			}),
			Error: func(err error) {
				te, ok := err.(types.Error)
				if !ok {
					return
				}
				pr := Problem{Package: p.PkgPath, Pos: fset.Position(te.Pos).String(), Msg: te.Msg}
				if !isOurs(p) {
					if pr.Why = whyIgnored(te); pr.Why != "" {
						res.Ignored = append(res.Ignored, pr)
						return
					}
				}
				res.Errors = append(res.Errors, pr)
			},
		}
		tp, _ := tc.Check(p.PkgPath, fset, files, nil) // errors go to tc.Error
		checked[p.ID] = tp
		res.FromSource++
		return tp, nil
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		// pkg.test is the generated test main: nothing of ours in it.
		if fromSource[id] && !strings.HasSuffix(id, ".test") {
			if _, err := check(all[id]); err != nil {
				return nil, err
			}
		}
	}
	// A file checked as part of a package and of its test variant reports
	// its errors twice.
	res.Errors, res.Ignored = dedupe(res.Errors), dedupe(res.Ignored)
	return res, nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// isOurs: a package of the main module, whose errors fail the check.
func isOurs(p *packages.Package) bool { return p.Module != nil && p.Module.Main }

// usesCgo reports whether a file of the package imports "C" (go/packages
// lists cgo files among GoFiles).
func usesCgo(p *packages.Package, overlay map[string][]byte) bool {
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		var src any
		if b, ok := overlay[name]; ok {
			src = b
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			continue // reported when the package is parsed in full
		}
		for _, imp := range f.Imports {
			if imp.Path.Value == `"C"` {
				return true
			}
		}
	}
	return false
}

// parseFiles parses the package's Go files, cgo ones included.
func parseFiles(fset *token.FileSet, p *packages.Package, overlay map[string][]byte) ([]*ast.File, error) {
	var files []*ast.File
	for _, name := range p.GoFiles {
		src, ok := overlay[name]
		if !ok {
			var err error
			if src, err = os.ReadFile(name); err != nil {
				return nil, fmt.Errorf("%s: %w", p.PkgPath, err)
			}
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.PkgPath, err)
		}
		files = append(files, f)
	}
	return files, nil
}

func goVersion(p *packages.Package) string {
	if p.Module != nil && p.Module.GoVersion != "" {
		return "go" + p.Module.GoVersion
	}
	return ""
}

// whyIgnored says why an error inside a dependency is a known false
// report of checking cgo code without cgo, or "" if it is not one (it then
// fails the check like an error of ours: the real macOS build would fail too).
//
// Known: with FakeImportC every C.name has an invalid type. Inside one
// package go/types stays quiet about operands of invalid type, but a C type
// that crosses packages is not silenced: e.g. vz's `(*char)(objc.GetUUID())`
// converts internal/objc's *C.char to vz's own `type char C.char`, and the
// checker reports "cannot convert … (value with invalid type)".
func whyIgnored(te types.Error) string {
	if strings.Contains(te.Msg, "invalid type") {
		return "a cgo type from another package is invalid under FakeImportC"
	}
	return ""
}

func dedupe(ps []Problem) []Problem {
	seen := map[string]bool{}
	var out []Problem
	for _, p := range ps {
		if k := p.Pos + p.Msg; !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}
