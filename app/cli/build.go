package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/app/buildctx"
	"github.com/berth-dev/berth/app/buildprogress"
)

func init() { register(newBuildCommand) }

type buildFlags struct {
	tags, buildArgs, labels, addHosts        []string
	file, target, platform, network, iidfile string
	cgroupParent, cpusetCPUs, cpusetMems     string
	memory, memorySwap, shmSize              string
	cpuShares, cpuQuota, cpuPeriod           int64
	noCache, pull, rm, forceRm, quiet        bool
}

func newBuildCommand(env *Env) *cobra.Command {
	var o buildFlags
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, env, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.tags, "tag", "t", nil, `name and optionally a tag in the "name:tag" format`)
	f.StringVarP(&o.file, "file", "f", "", `name of the Dockerfile (default: "PATH/Dockerfile")`)
	f.StringArrayVar(&o.buildArgs, "build-arg", nil, "set build-time variables")
	f.StringArrayVar(&o.labels, "label", nil, "set metadata for an image")
	f.StringVar(&o.target, "target", "", "set the target build stage to build")
	f.StringVar(&o.platform, "platform", env.Getenv("DOCKER_DEFAULT_PLATFORM"), "set platform if server is multi-platform capable")
	f.BoolVar(&o.noCache, "no-cache", false, "do not use cache when building the image")
	f.BoolVar(&o.pull, "pull", false, "always attempt to pull a newer version of the image")
	f.BoolVar(&o.rm, "rm", true, "remove intermediate containers after a successful build")
	f.BoolVar(&o.forceRm, "force-rm", false, "always remove intermediate containers")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "suppress the build output and print image ID on success")
	f.StringVar(&o.iidfile, "iidfile", "", "write the image ID to the file")
	f.StringVar(&o.network, "network", "", "set the networking mode for the RUN instructions during build")
	f.StringArrayVar(&o.addHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	f.StringVarP(&o.memory, "memory", "m", "", "memory limit")
	f.StringVar(&o.memorySwap, "memory-swap", "", `swap limit equal to memory plus swap: "-1" to enable unlimited swap`)
	f.StringVar(&o.shmSize, "shm-size", "", "size of /dev/shm")
	f.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&o.cpuQuota, "cpu-quota", 0, "limit the CPU CFS (Completely Fair Scheduler) quota")
	f.Int64Var(&o.cpuPeriod, "cpu-period", 0, "limit the CPU CFS (Completely Fair Scheduler) period")
	f.StringVar(&o.cpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.StringVar(&o.cgroupParent, "cgroup-parent", "", "set the parent cgroup for the RUN instructions during build")
	return cmd
}

func runBuild(cmd *cobra.Command, env *Env, o buildFlags, path string) error {
	opts := client.ImageBuildOptions{
		Tags: o.tags, NoCache: o.noCache, PullParent: o.pull, Remove: o.rm || o.forceRm, ForceRemove: o.forceRm,
		SuppressOutput: o.quiet, Target: o.target, NetworkMode: o.network, ExtraHosts: o.addHosts,
		CPUShares: o.cpuShares, CPUQuota: o.cpuQuota, CPUPeriod: o.cpuPeriod, CPUSetCPUs: o.cpusetCPUs,
		CPUSetMems: o.cpusetMems, CgroupParent: o.cgroupParent, Version: build.BuilderBuildKit,
		BuildArgs: map[string]*string{}, Labels: map[string]string{}, AuthConfigs: authConfigs(env),
	}
	for _, a := range o.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			// A name alone takes its value from this environment, if set.
			if ev, set := os.LookupEnv(k); set {
				opts.BuildArgs[k] = &ev
			} else {
				opts.BuildArgs[k] = nil
			}
			continue
		}
		opts.BuildArgs[k] = &v
	}
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		opts.Labels[k] = v
	}
	for name, p := range map[string]struct {
		s   string
		out *int64
	}{"memory": {o.memory, &opts.Memory}, "memory-swap": {o.memorySwap, &opts.MemorySwap}, "shm-size": {o.shmSize, &opts.ShmSize}} {
		if p.s == "" {
			continue
		}
		if p.s == "-1" {
			*p.out = -1
			continue
		}
		n, err := units.RAMInBytes(p.s)
		if err != nil {
			return fmt.Errorf("invalid --%s %q: %w", name, p.s, err)
		}
		*p.out = n
	}
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	// BuildKit, as the docker CLI with buildx; DOCKER_BUILDKIT=0 asks for
	// the classic builder, as it does of docker.
	buildkit := true
	if v := env.Getenv("DOCKER_BUILDKIT"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("DOCKER_BUILDKIT=%q: %w", v, err)
		}
		buildkit = on
	}
	if !buildkit {
		opts.Version = build.BuilderV1
	}
	var body io.Reader
	switch {
	case path == "-":
		r, name, err := stdinContext(env.Stdin, o.file)
		if err != nil {
			return err
		}
		body, opts.Dockerfile = r, name
	case strings.Contains(path, "://") || strings.HasPrefix(path, "git@"):
		if !buildkit {
			return fmt.Errorf("remote build contexts (%s) need BuildKit: unset DOCKER_BUILDKIT=0, or clone or download it and build the folder", path)
		}
		opts.RemoteContext, opts.Dockerfile = path, o.file
		body = http.NoBody
	default:
		r, name, err := buildctx.Tar(path, o.file)
		if err != nil {
			return err
		}
		defer r.Close()
		body, opts.Dockerfile = r, name
	}

	c, err := env.apiClient()
	if err != nil {
		return err
	}
	defer c.Close()
	if o.iidfile != "" {
		if err := os.Remove(o.iidfile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	resp, err := c.ImageBuild(cmd.Context(), body, opts)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if buildkit {
		return readBuildKit(cmd, env, o, resp.Body)
	}
	out := env.Stdout
	var held bytes.Buffer
	if o.quiet {
		out = &held
	}
	imageID := ""
	err = jsonmessage.DisplayStream(resp.Body, out, jsonmessage.WithAuxCallback(func(m jsonstream.Message) {
		var r build.Result
		if json.Unmarshal(*m.Aux, &r) == nil {
			imageID = r.ID
		}
	}))
	if err != nil {
		var jerr *jsonstream.Error
		if errors.As(err, &jerr) {
			if o.quiet {
				env.Stderr.Write(held.Bytes())
			}
			code := jerr.Code
			if code == 0 {
				code = 1
			}
			return ExitError{Code: code, Message: jerr.Message}
		}
		return err
	}
	if o.quiet {
		env.Stdout.Write(held.Bytes())
		if imageID == "" {
			// A quiet build answers with the image ID alone, as dockerd's.
			imageID = strings.TrimSpace(held.String())
		}
	}
	if o.iidfile != "" {
		if imageID == "" {
			return fmt.Errorf("the engine did not report an image ID: cannot write %s", o.iidfile)
		}
		return os.WriteFile(o.iidfile, []byte(imageID), 0o666)
	}
	return nil
}

// readBuildKit shows a BuildKit build's progress on stderr (as docker
// build does; -q shows none) and prints or writes the image ID.
func readBuildKit(cmd *cobra.Command, env *Env, o buildFlags, body io.Reader) error {
	var progress io.Writer = env.Stderr
	if o.quiet {
		progress = nil
	}
	id, err := buildprogress.Read(cmd.Context(), body, progress)
	if err != nil {
		var berr *buildprogress.BuildError
		if errors.As(err, &berr) {
			return ExitError{Code: 1, Message: "failed to build: " + berr.Message}
		}
		return err
	}
	if o.quiet {
		fmt.Fprintln(env.Stdout, id)
	}
	if o.iidfile != "" {
		return os.WriteFile(o.iidfile, []byte(id), 0o666)
	}
	return nil
}

// authConfigs are all credentials of the docker CLI's config, for pulls of
// base images (X-Registry-Config).
func authConfigs(env *Env) map[string]registry.AuthConfig {
	out := map[string]registry.AuthConfig{}
	b, err := os.ReadFile(filepath.Join(dockerConfigDir(env), "config.json"))
	if err != nil {
		return out
	}
	var cfg struct {
		Auths map[string]registry.AuthConfig `json:"auths"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return out
	}
	for k, ac := range cfg.Auths {
		if ac.Auth != "" && ac.Username == "" {
			if raw, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
				ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
				ac.Auth = ""
			}
		}
		ac.ServerAddress = k
		out[k] = ac
	}
	return out
}

func dockerConfigDir(env *Env) string {
	if dir := env.Getenv("DOCKER_CONFIG"); dir != "" {
		return dir
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker")
}

// stdinContext is `build -`: a tar archive as the context, or a Dockerfile
// alone (then the context is empty).
func stdinContext(in io.Reader, file string) (io.Reader, string, error) {
	br := bufio.NewReaderSize(in, 64<<10)
	magic, _ := br.Peek(512)
	if isArchive(magic) {
		return br, file, nil
	}
	df, err := io.ReadAll(br)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df)), ModTime: time.Now(), Typeflag: tar.TypeReg})
	tw.Write(df)
	tw.Close()
	return &buf, "Dockerfile", nil
}

func isArchive(b []byte) bool {
	for _, m := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0x28, 0xb5, 0x2f, 0xfd}, {0xfd, '7', 'z', 'X', 'Z', 0}} {
		if bytes.HasPrefix(b, m) {
			return true
		}
	}
	return len(b) >= 263 && bytes.HasPrefix(b[257:], []byte("ustar"))
}
