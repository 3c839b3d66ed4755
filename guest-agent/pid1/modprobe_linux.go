package pid1

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Modprobe is the kernel's modprobe in the VM (/sbin/modprobe is /init):
// the kernel runs it for what it needs and does not have (mount -t
// overlay: fs-overlay, a netlink family: net-pf-16-proto-12 …). It loads
// the module named, or the one an alias names, after its dependencies,
// from the modules.dep and /etc/modprobe.d aliases build/guest writes.
// Unlike busybox's, it treats a module PID 1 is still loading as not yet
// there: finit_module waits for that load to finish, so the kernel's
// retry after modprobe finds it. It returns the exit status.
func Modprobe(args []string) int {
	quiet, verbose := false, false
	var names []string
	for i, a := range args {
		switch {
		case a == "--":
			names = append(names, args[i+1:]...)
		case a == "-q" || a == "--quiet":
			quiet = true
		case a == "-v" || a == "--verbose":
			verbose = true
		case strings.HasPrefix(a, "-"):
			if !quiet {
				fmt.Fprintf(os.Stderr, "modprobe: option %s is not supported\n", a)
			}
			return 1
		default:
			names = append(names, a)
		}
		if a == "--" {
			break
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(os.Stderr, "usage: modprobe [-q] [-v] MODULE|ALIAS")
		return 1
	}
	var uts unix.Utsname
	unix.Uname(&uts)
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]))
	db, err := readModuleDB(dir, "/etc/modprobe.d")
	if err != nil {
		if !quiet {
			fmt.Fprintln(os.Stderr, "modprobe:", err)
		}
		return 1
	}
	// The kernel passes one name; arguments after it are module options,
	// which nothing here uses.
	name := names[0]
	mod, ok := db.resolve(name)
	if !ok {
		if !quiet {
			fmt.Fprintf(os.Stderr, "modprobe: module %s not found in %s\n", name, dir)
		}
		return 1
	}
	insmod := func(p string) error {
		if verbose {
			fmt.Fprintln(os.Stderr, "insmod", p)
		}
		return loadModule(p)
	}
	if err := db.load(mod, map[string]bool{}, insmod); err != nil {
		if !quiet {
			fmt.Fprintln(os.Stderr, "modprobe:", err)
		}
		return 1
	}
	return 0
}

type moduleDB struct {
	dir     string
	path    map[string]string   // module name → path under dir
	deps    map[string][]string // module name → modules it needs
	aliases [][2]string         // pattern, module name
}

func readModuleDB(dir, confDir string) (*moduleDB, error) {
	db := &moduleDB{dir: dir, path: map[string]string{}, deps: map[string][]string{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n := moduleName(p)
		db.path[n] = p
		for _, d := range strings.Fields(deps) {
			db.deps[n] = append(db.deps[n], moduleName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	confs, _ := filepath.Glob(filepath.Join(confDir, "*.conf"))
	for _, c := range confs {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "alias" {
				db.aliases = append(db.aliases, [2]string{f[1], moduleName(f[2])})
			}
		}
	}
	return db, nil
}

// moduleName is a module's name from its path or as written (- and _
// are the same).
func moduleName(s string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(s), ".ko"), "-", "_")
}

func (db *moduleDB) resolve(name string) (string, bool) {
	if _, ok := db.path[moduleName(name)]; ok {
		return moduleName(name), true
	}
	for _, a := range db.aliases {
		if ok, _ := path.Match(a[0], name); ok || a[0] == name {
			if _, known := db.path[a[1]]; known {
				return a[1], true
			}
		}
	}
	return "", false
}

// load loads mod after what it needs. A module already loaded (or being
// loaded: finit_module waits for it) is fine.
func (db *moduleDB) load(mod string, done map[string]bool, insmod func(path string) error) error {
	if done[mod] {
		return nil
	}
	done[mod] = true
	for _, d := range db.deps[mod] {
		if err := db.load(d, done, insmod); err != nil {
			return err
		}
	}
	err := insmod(filepath.Join(db.dir, db.path[mod]))
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
