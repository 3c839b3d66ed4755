//go:build linux

package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/errdefs"
	"github.com/berth-dev/berth/runtime/image"
)

// plan is a parsed Dockerfile cut at the target stage.
type plan struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
	total    int    // steps, for "Step i/n"
	labels   string // the LABEL step added for the labels option ("" for none)
	warnings []parser.Warning
}

func parseDockerfile(df []byte, opts Options) (*plan, error) {
	if len(bytes.TrimSpace(df)) == 0 {
		return nil, errdefs.InvalidArgument("the Dockerfile (%s) cannot be empty", dockerfileName(opts.Dockerfile))
	}
	res, err := parser.Parse(bytes.NewReader(df))
	if err != nil {
		return nil, errdefs.InvalidArgument("dockerfile parse error: %v", err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, errdefs.InvalidArgument("%v", err)
	}
	if len(stages) == 0 {
		return nil, errdefs.InvalidArgument("the Dockerfile (%s) has no FROM instruction", dockerfileName(opts.Dockerfile))
	}
	if opts.Target != "" {
		i, ok := instructions.HasStage(stages, strings.ToLower(opts.Target))
		if !ok {
			return nil, errdefs.InvalidArgument("failed to reach build target %s in Dockerfile", opts.Target)
		}
		stages = stages[:i+1]
	}
	p := &plan{stages: stages, metaArgs: metaArgs, escape: res.EscapeToken, warnings: res.Warnings}
	p.total = len(metaArgs) // each a step of its own, as dockerd counts them
	for _, s := range stages {
		p.total += 1 + len(s.Commands)
	}
	if len(opts.Labels) > 0 {
		var kv []string
		for _, k := range sortedKeys(opts.Labels) {
			kv = append(kv, labelWord(k)+"="+labelWord(opts.Labels[k]))
		}
		p.labels = "LABEL " + strings.Join(kv, " ")
		p.total++
	}
	return p, nil
}

// labelWord quotes a label's key or value only when it needs quotes, as
// dockerd writes the LABEL step of the labels option.
func labelWord(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\"'\\$=") {
		return strconv.Quote(s)
	}
	return s
}

func dockerfileName(n string) string {
	if n == "" {
		return "Dockerfile"
	}
	return n
}

// buildState is one build in progress.
type buildState struct {
	b        *Builder
	opts     *Options
	bc       *buildContext
	plan     *plan
	lex      *shell.Lex
	step     int
	meta     map[string]*string // global ARGs (before the first FROM)
	stages   []*stageState
	consumed map[string]bool // build args some ARG declared
	holds    []func()        // releases of the step images held from prunes
}

// stageState is the stage being built: its image so far and the config
// the next steps see.
type stageState struct {
	name    string
	index   int
	imageID string // "" while a FROM scratch stage has committed nothing
	config  v1.Config
	author  string
	args    []argValue // ARGs declared in this stage, in order
	cmdSet  bool       // CMD was set in this stage (ENTRYPOINT then keeps it)
}

type argValue struct {
	name  string
	value *string
}

func (bs *buildState) out() io.Writer { return bs.opts.Stdout }

func (bs *buildState) run(ctx context.Context) (string, error) {
	bs.lex = shell.NewLex(bs.plan.escape)
	for _, w := range bs.plan.warnings {
		fmt.Fprintf(bs.out(), "[WARNING]: %s\n", w.Short)
	}
	if err := bs.metaArgs(); err != nil {
		return "", err
	}
	var st *stageState
	for i := range bs.plan.stages {
		s := &bs.plan.stages[i]
		var err error
		if st, err = bs.from(ctx, i, s); err != nil {
			return "", err
		}
		bs.stages = append(bs.stages, st)
		for _, cmd := range s.Commands {
			if err := bs.dispatch(ctx, st, cmd, "", true); err != nil {
				return "", err
			}
		}
	}
	if bs.plan.labels != "" {
		lc := instructions.NewLabelCommand("", "", true)
		lc.Labels = nil
		for _, k := range sortedKeys(bs.opts.Labels) {
			lc.Labels = append(lc.Labels, instructions.KeyValuePair{Key: k, Value: bs.opts.Labels[k]})
		}
		if err := bs.dispatch(ctx, st, lc, bs.plan.labels, true); err != nil {
			return "", err
		}
	}
	if st.imageID == "" {
		return "", errdefs.InvalidArgument("No image was generated. Is your Dockerfile empty?")
	}
	return st.imageID, nil
}

// platformArgs are the automatic platform ARGs, as BuildKit defines them.
func platformArgs() map[string]string {
	p := "linux/" + runtime.GOARCH
	return map[string]string{"BUILDPLATFORM": p, "BUILDOS": "linux", "BUILDARCH": runtime.GOARCH,
		"TARGETPLATFORM": p, "TARGETOS": "linux", "TARGETARCH": runtime.GOARCH, "TARGETVARIANT": ""}
}

// metaArgs evaluates the ARGs before the first FROM.
func (bs *buildState) metaArgs() error {
	bs.meta = map[string]*string{}
	for k, v := range platformArgs() {
		bs.meta[k] = &v
	}
	for i := range bs.plan.metaArgs {
		a := &bs.plan.metaArgs[i]
		bs.header(a.String())
		if err := a.Expand(bs.expander(bs.metaEnv())); err != nil {
			return errdefs.InvalidArgument("%s: %v", a.String(), err)
		}
		for _, kv := range a.Args {
			bs.meta[kv.Key] = bs.argValue(kv.Key, kv.Value, nil)
		}
	}
	return nil
}

func (bs *buildState) metaEnv() []string {
	var env []string
	for _, k := range sortedKeys(bs.meta) {
		if v := bs.meta[k]; v != nil {
			env = append(env, k+"="+*v)
		}
	}
	return env
}

// argValue is an ARG's value: the build arg when given, else the default,
// else the global ARG of that name, else the automatic platform value.
func (bs *buildState) argValue(name string, def *string, global map[string]*string) *string {
	bs.consumed[name] = true
	if v, ok := bs.opts.BuildArgs[name]; ok && v != nil {
		return v
	}
	if def != nil {
		return def
	}
	if v, ok := global[name]; ok && v != nil {
		return v
	}
	if v, ok := platformArgs()[name]; ok {
		return &v
	}
	return nil
}

// proxyArgs may be given without an ARG; RUN sees them, the cache and the
// history do not (dockerd's predefined args).
var proxyArgs = map[string]bool{"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true}

func (bs *buildState) unusedArgs() []string {
	var out []string
	for _, k := range sortedKeys(bs.opts.BuildArgs) {
		if !bs.consumed[k] && !proxyArgs[k] {
			out = append(out, k)
		}
	}
	return out
}

// env is what words of the stage expand against: its ARGs, then ENV (which
// wins over an ARG of the same name).
func (st *stageState) env() []string {
	seen := map[string]int{}
	var env []string
	add := func(k, v string) {
		if i, ok := seen[k]; ok {
			env[i] = k + "=" + v
			return
		}
		seen[k] = len(env)
		env = append(env, k+"="+v)
	}
	for _, a := range st.args {
		if a.value != nil {
			add(a.name, *a.value)
		}
	}
	for _, e := range st.config.Env {
		k, v, _ := strings.Cut(e, "=")
		add(k, v)
	}
	return env
}

// runArgs are the build args a RUN sees on top of ENV: declared ones with
// a value that ENV does not set.
func (st *stageState) runArgs() []string {
	var out []string
	for _, a := range st.args {
		if a.value == nil || hasEnvKey(st.config.Env, a.name) {
			continue
		}
		out = append(out, a.name+"="+*a.value)
	}
	return out
}

func hasEnvKey(env []string, k string) bool {
	for _, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			return true
		}
	}
	return false
}

func (bs *buildState) expander(env []string) instructions.SingleWordExpander {
	return newExpander(bs.lex, env).word
}

func (bs *buildState) header(text string) {
	bs.step++
	fmt.Fprintf(bs.out(), "Step %d/%d : %s\n", bs.step, bs.plan.total, text)
}

func (bs *buildState) fail(text string, err error) error {
	return &StepError{Step: bs.step, Total: bs.plan.total, Instruction: text, Err: err}
}

// from starts stage i: its base is an earlier stage, scratch, or an image
// (pulled when missing, or always with the pull option).
func (bs *buildState) from(ctx context.Context, i int, s *instructions.Stage) (*stageState, error) {
	bs.header(s.SourceCode)
	base, err := newExpander(bs.lex, bs.metaEnv()).word(s.BaseName)
	if err == nil && base == "" {
		err = fmt.Errorf("base name (%s) should not be blank", s.BaseName)
	}
	if err != nil {
		return nil, bs.fail(s.SourceCode, errdefs.InvalidArgument("%v", err))
	}
	platform := bs.opts.Platform
	if s.Platform != "" {
		if platform, err = newExpander(bs.lex, bs.metaEnv()).word(s.Platform); err != nil {
			return nil, bs.fail(s.SourceCode, errdefs.InvalidArgument("%v", err))
		}
		if err := checkPlatform(platform); err != nil {
			return nil, bs.fail(s.SourceCode, err)
		}
	}
	st := &stageState{name: s.Name, index: i}
	if prev := bs.stageByName(base); prev != nil {
		st.imageID, st.config, st.author = prev.imageID, cloneConfig(prev.config), prev.author
	} else if !strings.EqualFold(base, "scratch") {
		img, err := bs.baseImage(ctx, base, platform)
		if err != nil {
			return nil, bs.fail(s.SourceCode, err)
		}
		st.imageID = img.ID
		bs.hold(img.ID)
		if img.Config != nil {
			st.config = cloneConfig(img.Config.Config)
			st.author = img.Config.Author
		}
	}
	if len(st.config.Env) == 0 {
		st.config.Env = []string{"PATH=" + defaultPath}
	}
	if st.imageID != "" {
		fmt.Fprintf(bs.out(), " ---> %s\n", shortID(st.imageID))
	}
	if triggers := st.config.OnBuild; len(triggers) > 0 {
		st.config.OnBuild = nil
		fmt.Fprintf(bs.out(), "# Executing %d build trigger", len(triggers))
		if len(triggers) > 1 {
			fmt.Fprint(bs.out(), "s")
		}
		fmt.Fprintln(bs.out())
		for _, t := range triggers {
			res, err := parser.Parse(strings.NewReader(t))
			if err != nil || len(res.AST.Children) != 1 {
				return nil, bs.fail(s.SourceCode, errdefs.InvalidArgument("invalid ONBUILD trigger %q of the base image: %v", t, err))
			}
			cmd, err := instructions.ParseCommand(res.AST.Children[0])
			if err != nil {
				return nil, bs.fail(s.SourceCode, errdefs.InvalidArgument("ONBUILD trigger %q: %v", t, err))
			}
			if err := bs.dispatch(ctx, st, cmd, t, false); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func (bs *buildState) stageByName(name string) *stageState {
	for _, s := range bs.stages {
		if s.name != "" && strings.EqualFold(s.name, name) {
			return s
		}
	}
	return nil
}

// stageRef finds the stage --from names: by name or index, earlier only.
func (bs *buildState) stageRef(ref string, current int) (*stageState, error) {
	if s := bs.stageByName(ref); s != nil {
		return s, nil
	}
	if n, err := strconv.Atoi(ref); err == nil {
		if n < 0 || n >= current {
			return nil, errdefs.InvalidArgument("invalid from flag value %s: refers to the current or a later build stage", ref)
		}
		return bs.stages[n], nil
	}
	for i := range bs.plan.stages[current:] {
		if strings.EqualFold(bs.plan.stages[current+i].Name, ref) {
			return nil, errdefs.InvalidArgument("invalid from flag value %s: refers to the current or a later build stage", ref)
		}
	}
	return nil, nil
}

// baseImage is the local image ref, pulled when missing or asked to.
func (bs *buildState) baseImage(ctx context.Context, ref, platform string) (*image.Image, error) {
	named, err := image.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if !bs.opts.Pull {
		if img, err := bs.b.cfg.Images.Get(named.String()); err == nil {
			return img, nil
		} else if !errdefs.IsNotFound(err) {
			return nil, err
		}
	}
	img, err := bs.b.cfg.Images.Pull(ctx, named.String(), image.PullOptions{Platform: platform, Auth: bs.auth(named.String())}, bs.opts.Progress)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// auth picks the credentials X-Registry-Config holds for ref's registry.
func (bs *buildState) auth(ref string) *registry.AuthConfig {
	if len(bs.opts.Auth) == 0 {
		return nil
	}
	host := ref
	if i := strings.IndexByte(ref, '/'); i > 0 {
		host = ref[:i]
	}
	keys := []string{host, "https://" + host, "http://" + host}
	if host == "docker.io" {
		keys = append([]string{"https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"}, keys...)
	}
	for _, k := range keys {
		if ac, ok := bs.opts.Auth[k]; ok {
			return &ac
		}
	}
	for k, ac := range bs.opts.Auth {
		if strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://"), "/") == host {
			return &ac
		}
	}
	return nil
}

func cloneConfig(c v1.Config) v1.Config {
	b, _ := json.Marshal(c)
	var out v1.Config
	json.Unmarshal(b, &out)
	return out
}

// dispatch runs one instruction of st; text (when set) is the step's text
// in place of the instruction's own. ONBUILD triggers get no header: they
// run under their stage's FROM step.
func (bs *buildState) dispatch(ctx context.Context, st *stageState, cmd instructions.Command, text string, header bool) error {
	if text == "" {
		text = cmd.(fmt.Stringer).String()
	}
	if header {
		bs.header(text)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	began := time.Now()
	defer func() { bs.b.log.Debug("build step", "step", bs.step, "instruction", text, "took", time.Since(began)) }()
	if err := bs.dispatch1(ctx, st, cmd); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return bs.fail(text, err)
	}
	return nil
}

func (bs *buildState) dispatch1(ctx context.Context, st *stageState, cmd instructions.Command) error {
	if n := configSize(st); n > maxVariables {
		return errdefs.InvalidArgument("the stage's variables and labels take %d bytes, more than %d MiB", n, maxVariables>>20)
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if _, isRun := cmd.(*instructions.RunCommand); !isRun {
			if err := ex.Expand(bs.expander(st.env())); err != nil {
				return errdefs.InvalidArgument("%v", err)
			}
		}
	}
	c := &st.config
	switch cmd := cmd.(type) {
	case *instructions.RunCommand:
		return bs.runStep(ctx, st, cmd)
	case *instructions.CopyCommand:
		return bs.copyStep(ctx, st, copyArgs{verb: "COPY", sd: cmd.SourcesAndDest, from: cmd.From, chown: cmd.Chown,
			chmod: cmd.Chmod, excludes: cmd.ExcludePatterns, parents: cmd.Parents})
	case *instructions.AddCommand:
		unpack := cmd.Unpack == nil || *cmd.Unpack
		if cmd.Checksum != "" || cmd.KeepGitDir != nil {
			return errdefs.NotImplemented("ADD --checksum and --keep-git-dir apply to remote sources, which Berth's builder does not fetch")
		}
		return bs.copyStep(ctx, st, copyArgs{verb: "ADD", sd: cmd.SourcesAndDest, chown: cmd.Chown, chmod: cmd.Chmod,
			excludes: cmd.ExcludePatterns, unpack: unpack})
	case *instructions.EnvCommand:
		var parts []string
		for _, kv := range cmd.Env {
			c.Env = setEnv(c.Env, kv.Key, kv.Value)
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		return bs.commit(ctx, st, configNop(st, "ENV "+strings.Join(parts, " ")), "", nil)
	case *instructions.LabelCommand:
		var parts []string
		for _, kv := range cmd.Labels {
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[kv.Key] = kv.Value
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		return bs.commit(ctx, st, configNop(st, "LABEL "+strings.Join(parts, " ")), "", nil)
	case *instructions.MaintainerCommand:
		st.author = cmd.Maintainer
		return bs.commit(ctx, st, configNop(st, "MAINTAINER "+cmd.Maintainer), "", nil)
	case *instructions.CmdCommand:
		c.Cmd = commandLine(st, cmd.ShellDependantCmdLine)
		st.cmdSet = true
		return bs.commit(ctx, st, configNop(st, fmt.Sprintf("CMD %q", c.Cmd)), "", nil)
	case *instructions.EntrypointCommand:
		c.Entrypoint = commandLine(st, cmd.ShellDependantCmdLine)
		if !st.cmdSet {
			c.Cmd = nil // an inherited CMD was for another entrypoint
		}
		return bs.commit(ctx, st, configNop(st, fmt.Sprintf("ENTRYPOINT %q", c.Entrypoint)), "", nil)
	case *instructions.ExposeCommand:
		var ports []string
		for _, word := range cmd.Ports {
			words, err := newExpander(bs.lex, st.env()).words(word)
			if err != nil {
				return errdefs.InvalidArgument("%v", err)
			}
			for _, p := range words {
				ps, err := exposedPorts(p)
				if err != nil {
					return err
				}
				ports = append(ports, ps...)
			}
		}
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range ports {
			c.ExposedPorts[p] = struct{}{}
		}
		return bs.commit(ctx, st, configNop(st, "EXPOSE "+strings.Join(ports, " ")), "", nil)
	case *instructions.VolumeCommand:
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range cmd.Volumes {
			if v = strings.TrimSpace(v); v == "" {
				return errdefs.InvalidArgument("VOLUME specified can not be an empty string")
			}
			c.Volumes[v] = struct{}{}
		}
		return bs.commit(ctx, st, configNop(st, fmt.Sprintf("VOLUME %v", cmd.Volumes)), "", nil)
	case *instructions.UserCommand:
		c.User = cmd.User
		return bs.commit(ctx, st, configNop(st, "USER "+cmd.User), "", nil)
	case *instructions.WorkdirCommand:
		return bs.workdirStep(ctx, st, cmd.Path)
	case *instructions.StopSignalCommand:
		if _, err := parseSignal(cmd.Signal); err != nil {
			return err
		}
		c.StopSignal = cmd.Signal
		return bs.commit(ctx, st, configNop(st, "STOPSIGNAL "+cmd.Signal), "", nil)
	case *instructions.HealthCheckCommand:
		h := cmd.Health
		c.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
		return bs.commit(ctx, st, configNop(st, fmt.Sprintf("HEALTHCHECK %+v", &ctr.HealthConfig{Test: h.Test, Interval: h.Interval,
			Timeout: h.Timeout, StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries})), "", nil)
	case *instructions.ShellCommand:
		c.Shell = append([]string(nil), cmd.Shell...)
		return bs.commit(ctx, st, configNop(st, fmt.Sprintf("SHELL %v", cmd.Shell)), "", nil)
	case *instructions.OnbuildCommand:
		c.OnBuild = append(c.OnBuild, strings.TrimSpace(cmd.Expression))
		return bs.commit(ctx, st, configNop(st, "ONBUILD "+strings.TrimSpace(cmd.Expression)), "", nil)
	case *instructions.ArgCommand:
		var parts []string
		for _, kv := range cmd.Args {
			v := bs.argValue(kv.Key, kv.Value, bs.meta)
			st.args = append(st.args, argValue{name: kv.Key, value: v})
			parts = append(parts, kv.String())
		}
		return bs.commit(ctx, st, configNop(st, "ARG "+strings.Join(parts, " ")), "", nil)
	}
	return errdefs.NotImplemented("instruction %s is not supported", strings.ToUpper(cmd.Name()))
}

func shellOf(st *stageState) []string {
	if len(st.config.Shell) > 0 {
		return st.config.Shell
	}
	return []string{"/bin/sh", "-c"}
}

// nop is dockerd's history text for WORKDIR, COPY and ADD.
func nop(st *stageState, s string) string {
	return strings.Join(shellOf(st), " ") + " #(nop) " + s
}

// configNop is dockerd's history text for a step that only changes the
// config: its "#(nop) " and the step are two words of the command, so
// joined they read "#(nop)  ENV A=1".
func configNop(st *stageState, s string) string {
	return strings.Join(shellOf(st), " ") + " #(nop)  " + s
}

func commandLine(st *stageState, c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(append([]string{}, shellOf(st)...), strings.Join(c.CmdLine, " "))
	}
	return append([]string{}, c.CmdLine...)
}

func jsonList(l []string) string {
	b, _ := json.Marshal(l)
	return string(b)
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// exposedPorts normalizes an EXPOSE word: "80", "53/UDP", "8000-8002/tcp".
func exposedPorts(p string) ([]string, error) {
	num, proto, _ := strings.Cut(p, "/")
	proto = strings.ToLower(proto)
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, errdefs.InvalidArgument("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(num, "-")
	start, err1 := strconv.ParseUint(lo, 10, 16)
	end := start
	var err2 error
	if isRange {
		end, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || end < start || start == 0 {
		return nil, errdefs.InvalidArgument("invalid containerPort: %s", p)
	}
	var out []string
	for n := start; n <= end; n++ {
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	return out, nil
}

// workdirStep sets WORKDIR and makes the directory when the image lacks it.
func (bs *buildState) workdirStep(ctx context.Context, st *stageState, p string) error {
	if !path.IsAbs(p) {
		p = path.Join("/", st.config.WorkingDir, p)
	}
	p = path.Clean(p)
	st.config.WorkingDir = p
	return bs.commit(ctx, st, nop(st, "WORKDIR "+p), "", func(root string) (bool, error) {
		w, err := newRootWriter(root, 0, 0)
		if err != nil {
			return false, err
		}
		defer w.close()
		if w.isDir(p) {
			return false, nil
		}
		_, err = w.dir(p, 0o755, time.Now())
		return err == nil, err
	})
}

// parseSignal checks a STOPSIGNAL: a number or a name, with or without SIG.
func parseSignal(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return n, nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return int(n), nil
	}
	return 0, errdefs.InvalidArgument("invalid signal: %s", s)
}
