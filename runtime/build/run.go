//go:build linux

package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	ctr "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/runtime/container"
	"github.com/berth-dev/berth/runtime/errdefs"
)

// runStep runs a RUN instruction in a container of the stage's image and
// commits what it changed.
func (bs *buildState) runStep(ctx context.Context, st *stageState, cmd *instructions.RunCommand) error {
	if len(cmd.Files) > 0 {
		return errdefs.NotImplemented("RUN with a here-document is not supported by Berth's builder")
	}
	if len(cmd.FlagsUsed) > 0 {
		return errdefs.NotImplemented("RUN --%s needs BuildKit; Berth's builder runs plain RUN steps", cmd.FlagsUsed[0])
	}
	argv := commandLine(st, cmd.ShellDependantCmdLine)
	args := st.runArgs()
	createdBy := strings.Join(argv, " ")
	if len(args) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(args), strings.Join(args, " "), createdBy)
	}
	key := cacheKey(st.imageID, createdBy, st.config, "RUN")
	if bs.cached(st, key) {
		return nil
	}
	if st.imageID == "" {
		return errdefs.InvalidArgument("RUN needs a command in the image, and this stage is empty (FROM scratch)")
	}
	env := append(append([]string{}, st.config.Env...), args...)
	for _, k := range sortedKeys(bs.opts.BuildArgs) {
		if v := bs.opts.BuildArgs[k]; proxyArgs[k] && v != nil && !hasEnvKey(env, k) {
			env = append(env, k+"="+*v)
		}
	}
	id, err := bs.runContainer(ctx, st, argv, env)
	if err != nil {
		return err
	}
	return bs.record(ctx, st, key, createdBy, bs.runLayer(id), func() {
		if bs.opts.Remove || bs.opts.ForceRemove {
			bs.removeContainer(id)
		}
	})
}

// runContainer creates, runs and waits for one RUN container, streaming its
// output. A failed command is an ExitError; its container stays for
// inspection unless ForceRemove.
func (bs *buildState) runContainer(ctx context.Context, st *stageState, argv, env []string) (string, error) {
	m := bs.b.cfg.Containers
	ro := bs.opts.Run
	cfg := &ctr.Config{Image: st.imageID, Cmd: argv, Entrypoint: []string{""}, Env: env, User: st.config.User,
		WorkingDir: st.config.WorkingDir, AttachStdout: true, AttachStderr: true,
		Healthcheck: &ctr.HealthConfig{Test: []string{"NONE"}}}
	hc := &ctr.HostConfig{NetworkMode: ctr.NetworkMode(ro.NetworkMode), ExtraHosts: ro.ExtraHosts, ShmSize: ro.ShmSize,
		LogConfig: ctr.LogConfig{Type: "none"},
		Resources: ctr.Resources{Memory: ro.Memory, MemorySwap: ro.MemorySwap, CPUShares: ro.CPUShares,
			CpusetCpus: ro.CPUSetCPUs, CpusetMems: ro.CPUSetMems, CPUQuota: ro.CPUQuota, CPUPeriod: ro.CPUPeriod,
			CgroupParent: ro.CgroupParent}}
	id, _, err := m.Create(ctx, container.CreateOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(bs.out(), " ---> Running in %s\n", shortID(id))
	at, err := m.Attach(id, container.AttachOptions{Stdout: true, Stderr: true, Stream: true})
	if err != nil {
		bs.removeContainer(id)
		return "", err
	}
	waitCtx, cancelWait := context.WithCancel(context.Background())
	defer cancelWait()
	exited, err := m.Wait(waitCtx, id, ctr.WaitConditionNextExit)
	if err != nil {
		at.Close()
		bs.removeContainer(id)
		return "", err
	}
	attached := make(chan struct{})
	go func() {
		defer close(attached)
		at.Run(context.Background(), nil, bs.opts.Stdout, bs.opts.Stderr)
	}()
	if err := m.Start(ctx, id); err != nil {
		at.Close()
		<-attached
		bs.removeContainer(id)
		return "", err
	}
	var res container.WaitResult
	select {
	case res = <-exited:
	case <-ctx.Done():
		// The client went away or the build was canceled: stop the step.
		kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m.Kill(kctx, id, "KILL")
		cancel()
		<-exited
		<-attached
		bs.removeContainer(id)
		return "", ctx.Err()
	}
	<-attached
	if res.ExitCode != 0 {
		if bs.opts.ForceRemove {
			bs.removeContainer(id)
		}
		return "", &ExitError{Code: res.ExitCode,
			Msg: fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(argv, " "), res.ExitCode)}
	}
	return id, nil
}

func (bs *buildState) removeContainer(id string) {
	fmt.Fprintf(bs.out(), "Removing intermediate container %s\n", shortID(id))
	if err := bs.b.cfg.Containers.Remove(context.Background(), id, container.RemoveOptions{Force: true}); err != nil {
		bs.b.log.Warn("build: remove intermediate container", "id", id, "err", err)
	}
}

// runLayer is the layer a RUN container made: its writable layer, less the
// empty mount points the runtime made for itself (/etc/hosts, /proc …
// where the image lacked them), which dockerd keeps out with an init layer.
func (bs *buildState) runLayer(id string) func(io.Writer) (string, error) {
	return func(w io.Writer) (string, error) {
		pr, pw := io.Pipe()
		go func() {
			_, err := bs.b.cfg.Snapshots.Diff(id, pw)
			pw.CloseWithError(err)
		}()
		defer pr.Close()
		return dropMountStubs(pr, w)
	}
}

var (
	stubFiles = map[string]bool{"etc/hostname": true, "etc/hosts": true, "etc/resolv.conf": true}
	stubDirs  = map[string]bool{"etc": true, "proc": true, "sys": true, "dev": true}
)

// dropMountStubs copies the layer tar r to w without the runtime's stubs
// and returns the digest of what it wrote. A stub directory is written
// only once something below it is.
func dropMountStubs(r io.Reader, w io.Writer) (string, error) {
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(w, h))
	tr := tar.NewReader(r)
	var pending *tar.Header
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if pending != nil && strings.HasPrefix(name, strings.TrimSuffix(pending.Name, "/")+"/") {
			if stubFiles[name] && hdr.Typeflag == tar.TypeReg && hdr.Size == 0 {
				continue
			}
			if err := tw.WriteHeader(pending); err != nil {
				return "", err
			}
			pending = nil
		} else {
			pending = nil
		}
		if stubDirs[name] && hdr.Typeflag == tar.TypeDir {
			pending = hdr
			continue
		}
		if stubFiles[name] && hdr.Typeflag == tar.TypeReg && hdr.Size == 0 {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
