//go:build linux

package container

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// defaultPath is dockerd's PATH for containers whose image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// processSpec is the container's main process: command, environment, user
// (resolved inside the container's root filesystem) and working directory.
// linkEnv (--link's variables) comes before the container's own, which
// win, as with dockerd.
func processSpec(rec *record, rootfs string, linkEnv []string) (*specs.Process, error) {
	cfg := rec.Config
	u, err := resolveUser(rootfs, cfg.User, rec.HostConfig.GroupAdd)
	if err != nil {
		return nil, err
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	if err := ensureDir(rootfs, cwd); err != nil {
		return nil, err
	}
	env := processEnv(append(slices.Clone(linkEnv), cfg.Env...), cfg.Hostname, cfg.Tty, u.Home)
	p := &specs.Process{
		Terminal: cfg.Tty,
		Args:     append([]string{rec.Path}, rec.Args...),
		Env:      env,
		Cwd:      cwd,
		User:     specs.User{UID: uint32(u.Uid), GID: uint32(u.Gid), AdditionalGids: u.groups()},
	}
	if p.Rlimits, err = ulimits(rec.HostConfig); err != nil {
		return nil, err
	}
	if cs := rec.HostConfig.ConsoleSize; cs[0] > 0 && cs[1] > 0 {
		p.ConsoleSize = &specs.Box{Height: cs[0], Width: cs[1]}
	}
	return p, nil
}

// ulimits are the HostConfig's --ulimit values as OCI rlimits.
func ulimits(hc *ctr.HostConfig) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, ul := range hc.Ulimits {
		if ul == nil {
			continue
		}
		typ, ok := rlimitTypes[ul.Name]
		if !ok {
			return nil, errdefs.InvalidArgument("invalid ulimit type: %s", ul.Name)
		}
		if uint64(ul.Soft) > uint64(ul.Hard) { // -1 is unlimited
			return nil, errdefs.InvalidArgument("invalid ulimit %s=%d:%d: the soft limit is above the hard one", ul.Name, ul.Soft, ul.Hard)
		}
		out = append(out, specs.POSIXRlimit{Type: typ, Hard: uint64(ul.Hard), Soft: uint64(ul.Soft)})
	}
	return out, nil
}

// rlimitTypes maps docker's --ulimit names to OCI rlimit types.
var rlimitTypes = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE",
	"nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
	"rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}

// processEnv completes a container's environment as dockerd does: PATH when
// missing, HOSTNAME, TERM for a TTY and HOME from the user's passwd entry.
func processEnv(env []string, hostname string, tty bool, home string) []string {
	out := []string{"PATH=" + defaultPath, "HOSTNAME=" + hostname}
	if tty {
		out = append(out, "TERM=xterm")
	}
	out = mergeEnv(out, env)
	if !hasEnv(out, "HOME") {
		if home == "" {
			home = "/"
		}
		out = append(out, "HOME="+home)
	}
	return out
}

// mergeImageEnv is a container's Config.Env as dockerd records it: the
// request's entries as given (a bare "K" too: it unsets K for the process,
// see mergeEnv), then the image's entries the request did not name.
func mergeImageEnv(user, image []string) []string {
	if len(user) == 0 {
		return image
	}
	named := map[string]bool{}
	for _, kv := range user {
		k, _, _ := strings.Cut(kv, "=")
		named[k] = true
	}
	out := append([]string(nil), user...)
	for _, kv := range image {
		if k, _, _ := strings.Cut(kv, "="); !named[k] {
			out = append(out, kv)
		}
	}
	return out
}

// mergeEnv overlays "K=V" entries of over onto base, keeping base's order.
func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	idx := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	for _, kv := range over {
		k, _, hasValue := strings.Cut(kv, "=")
		if !hasValue {
			// "K" alone unsets K (the CLI resolves -e K from its own
			// environment before sending it), as dockerd treats it.
			if i, ok := idx[k]; ok {
				out = append(out[:i], out[i+1:]...)
				delete(idx, k)
				for j := i; j < len(out); j++ {
					kk, _, _ := strings.Cut(out[j], "=")
					idx[kk] = j
				}
			}
			continue
		}
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// execUser is a resolved user with its supplementary groups.
type execUser struct {
	user.ExecUser
}

// groups is the supplementary group list: the primary group first, then
// the groups /etc/group and --group-add name (so `id` shows them as it
// does under dockerd).
func (u execUser) groups() []uint32 {
	out := []uint32{uint32(u.Gid)}
	for _, g := range u.Sgids {
		if !slices.Contains(out, uint32(g)) {
			out = append(out, uint32(g))
		}
	}
	return out
}

// resolveUser resolves "name", "uid", "name:group" or "uid:gid" against the
// container's /etc/passwd and /etc/group, read through os.Root so a hostile
// image cannot point them outside its root filesystem.
func resolveUser(rootfs, spec string, groupAdd []string) (execUser, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return execUser{}, fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()
	passwd := openOptional(root, "etc/passwd")
	group := openOptional(root, "etc/group")
	defer passwd.Close()
	defer group.Close()
	defaults := &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}
	u, err := user.GetExecUser(spec, defaults, passwd, group)
	if err != nil {
		// Found at start, as dockerd finds it: a 500 with its words.
		return execUser{}, errdefs.As(errdefs.KindUnknown, fmt.Errorf("unable to find user %s: %w", spec, userError(err)))
	}
	if len(groupAdd) > 0 {
		g2 := openOptional(root, "etc/group")
		defer g2.Close()
		extra, err := user.GetAdditionalGroups(groupAdd, g2)
		if err != nil {
			return execUser{}, errdefs.InvalidArgument("group-add: %v", err)
		}
		u.Sgids = append(u.Sgids, extra...)
	}
	return execUser{*u}, nil
}

// userError drops the "unable to find user X:" runc's lookup puts in front
// of its reason (the caller says it once).
func userError(err error) error {
	if _, after, ok := strings.Cut(err.Error(), ": "); ok && strings.HasPrefix(err.Error(), "unable to find user") {
		return errors.New(after)
	}
	return err
}

// openOptional opens name under root, or returns an empty reader when it
// is missing, so images without /etc/passwd still run as numeric users.
func openOptional(root *os.Root, name string) io.ReadCloser {
	f, err := root.Open(name)
	if err != nil {
		return io.NopCloser(strings.NewReader(""))
	}
	return f
}

// ensureDir creates the working directory inside rootfs when the image
// lacks it, as dockerd does.
func ensureDir(rootfs, dir string) error {
	rel := strings.TrimPrefix(path.Clean("/"+dir), "/")
	if rel == "" {
		return nil
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()
	st, err := root.Stat(rel)
	if err == nil {
		if !st.IsDir() {
			return errdefs.InvalidArgument("working directory %s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	if err := root.MkdirAll(rel, 0o755); err != nil {
		return fmt.Errorf("create working directory %s: %w", dir, err)
	}
	return nil
}
