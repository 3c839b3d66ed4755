package desktop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Container is one row of the Containers view.
type Container struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Image   string            `json:"image"`
	Command string            `json:"command"`
	Created int64             `json:"created"` // unix seconds
	State   string            `json:"state"`   // created, running, paused, restarting, exited, dead
	Status  string            `json:"status"`  // "Up 3 minutes", "Exited (0) 2 seconds ago"
	Ports   []Port            `json:"ports"`
	Labels  map[string]string `json:"labels"`
}

// Port is a container port, with the host port it is published on.
type Port struct {
	Proto         string `json:"proto"`
	ContainerPort int    `json:"containerPort"`
	HostIP        string `json:"hostIP,omitempty"`
	HostPort      int    `json:"hostPort,omitempty"`
	URL           string `json:"url,omitempty"` // http://localhost:PORT for published TCP ports
}

// Containers is the Containers view's service.
type Containers struct{ b *Backend }

// List returns every container, running ones first, then newest first.
func (c *Containers) List() ([]Container, error) {
	ctx, cancel := c.b.opCtx(15 * time.Second)
	defer cancel()
	return c.b.listContainers(ctx)
}

func (b *Backend) listContainers(ctx context.Context) ([]Container, error) {
	res, err := b.docker.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, engineError("list containers", err)
	}
	out := make([]Container, 0, len(res.Items))
	for _, s := range res.Items {
		out = append(out, containerFromSummary(s))
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := out[i].State == "running", out[j].State == "running"
		if ri != rj {
			return ri
		}
		return out[i].Created > out[j].Created
	})
	return out, nil
}

func containerFromSummary(s container.Summary) Container {
	c := Container{ID: s.ID, Image: s.Image, Command: s.Command, Created: s.Created,
		State: string(s.State), Status: s.Status, Labels: s.Labels, Ports: []Port{}}
	if len(s.Names) > 0 {
		c.Name = strings.TrimPrefix(s.Names[0], "/")
	}
	seen := map[string]bool{}
	for _, p := range s.Ports {
		port := Port{Proto: p.Type, ContainerPort: int(p.PrivatePort), HostPort: int(p.PublicPort)}
		if p.IP.IsValid() {
			port.HostIP = p.IP.String()
		}
		if port.Proto == "" {
			port.Proto = "tcp"
		}
		// dockerd lists a port published on 0.0.0.0 and :: twice; show it once.
		key := fmt.Sprintf("%s/%d/%d", port.Proto, port.ContainerPort, port.HostPort)
		if seen[key] {
			continue
		}
		seen[key] = true
		if port.HostPort > 0 && port.Proto == "tcp" {
			port.URL = portURL(p.IP, port.HostPort)
		}
		c.Ports = append(c.Ports, port)
	}
	sort.Slice(c.Ports, func(i, j int) bool { return c.Ports[i].ContainerPort < c.Ports[j].ContainerPort })
	return c
}

// portURL is where a browser reaches a published port: localhost for
// wildcard and loopback bindings, else the bound address.
func portURL(ip netip.Addr, port int) string {
	host := "localhost"
	if ip.IsValid() && !ip.IsUnspecified() && !ip.IsLoopback() {
		host = ip.String()
		if ip.Is6() {
			host = "[" + host + "]"
		}
	}
	return "http://" + host + ":" + strconv.Itoa(port)
}

// Start starts a stopped container.
func (c *Containers) Start(id string) error { return c.b.containerAction(id, "start") }

// Stop stops a running container (SIGTERM, then SIGKILL after its timeout).
func (c *Containers) Stop(id string) error { return c.b.containerAction(id, "stop") }

// Restart stops and starts a container.
func (c *Containers) Restart(id string) error { return c.b.containerAction(id, "restart") }

// Pause freezes a container's processes.
func (c *Containers) Pause(id string) error { return c.b.containerAction(id, "pause") }

// Unpause thaws a paused container.
func (c *Containers) Unpause(id string) error { return c.b.containerAction(id, "unpause") }

// Remove deletes a container; force stops it first if it runs.
func (c *Containers) Remove(id string, force bool) error {
	action := "remove"
	if force {
		action = "force-remove"
	}
	return c.b.containerAction(id, action)
}

// ActionResult is one container's outcome in a bulk action.
type ActionResult struct {
	ID    string `json:"id"`
	Error string `json:"error,omitempty"`
}

// Bulk applies action (start, stop, restart, pause, unpause, remove,
// force-remove) to each container, concurrently, and reports each outcome.
func (c *Containers) Bulk(action string, ids []string) ([]ActionResult, error) {
	if !validAction[action] {
		return nil, fmt.Errorf("unknown action %q", action)
	}
	out := make([]ActionResult, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i].ID = id
			if err := c.b.containerAction(id, action); err != nil {
				out[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	return out, nil
}

var validAction = map[string]bool{"start": true, "stop": true, "restart": true, "pause": true,
	"unpause": true, "remove": true, "force-remove": true}

func (b *Backend) containerAction(id, action string) error {
	ctx, cancel := b.opCtx(2 * time.Minute)
	defer cancel()
	var err error
	switch action {
	case "start":
		_, err = b.docker.ContainerStart(ctx, id, client.ContainerStartOptions{})
	case "stop":
		_, err = b.docker.ContainerStop(ctx, id, client.ContainerStopOptions{})
	case "restart":
		_, err = b.docker.ContainerRestart(ctx, id, client.ContainerRestartOptions{})
	case "pause":
		_, err = b.docker.ContainerPause(ctx, id, client.ContainerPauseOptions{})
	case "unpause":
		_, err = b.docker.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	case "remove":
		_, err = b.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{})
	case "force-remove":
		_, err = b.docker.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	return engineError(action+" "+shortID(id), err)
}

// Inspect returns the engine's inspect document, indented for reading.
func (c *Containers) Inspect(id string) (string, error) {
	ctx, cancel := c.b.opCtx(15 * time.Second)
	defer cancel()
	res, err := c.b.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return "", engineError("inspect "+shortID(id), err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, res.Raw, "", "  "); err != nil {
		return string(res.Raw), nil
	}
	return buf.String(), nil
}

// OpenPort opens a container's published TCP port in the browser.
func (c *Containers) OpenPort(id string, hostPort int) error {
	list, err := c.List()
	if err != nil {
		return err
	}
	for _, ct := range list {
		if ct.ID != id && ct.Name != id {
			continue
		}
		for _, p := range ct.Ports {
			if p.HostPort == hostPort && p.URL != "" {
				return c.b.openURL(p.URL)
			}
		}
		return fmt.Errorf("container %s publishes no TCP port %d", ct.Name, hostPort)
	}
	return fmt.Errorf("no such container: %s", id)
}

// LogLine is one line of a container's output.
type LogLine struct {
	Stream string `json:"stream"` // stdout or stderr
	Text   string `json:"text"`
}

// LogChunk is a batch of lines of a log stream; Done ends it.
type LogChunk struct {
	Lines []LogLine `json:"lines"`
	Done  bool      `json:"done,omitempty"`
	Error string    `json:"error,omitempty"`
}

// Logs streams a container's logs to "logs:ID" events (the last tail lines,
// tail < 0 for all, then new ones while follow is set) and returns the
// stream ID; CloseStream ends it.
func (c *Containers) Logs(id string, tail int, follow bool) (string, error) {
	b := c.b
	ctx, cancel := b.opCtx(15 * time.Second)
	defer cancel()
	ins, err := b.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return "", engineError("logs of "+shortID(id), err)
	}
	tty := ins.Container.Config != nil && ins.Container.Config.Tty
	tailArg := "all"
	if tail >= 0 {
		tailArg = strconv.Itoa(tail)
	}
	sid, sctx, _ := b.streams.add(b.ctx)
	rc, err := b.docker.ContainerLogs(sctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Tail: tailArg})
	if err != nil {
		b.streams.done(sid)
		return "", engineError("logs of "+shortID(id), err)
	}
	go func() {
		defer b.streams.done(sid)
		defer rc.Close()
		sink := newLineBatcher(func(ch LogChunk) { b.emit.Emit(EventLogs+":"+sid, ch) })
		var err error
		if tty {
			_, err = io.Copy(sink.writer("stdout"), rc)
		} else {
			_, err = stdcopy.StdCopy(sink.writer("stdout"), sink.writer("stderr"), rc)
		}
		end := LogChunk{Done: true}
		if err != nil && sctx.Err() == nil {
			end.Error = engineError("logs", err).Error()
		}
		sink.close(end)
	}()
	return sid, nil
}

// CloseStream ends a log, stats or terminal stream, or cancels a pull or
// build; it reports whether the stream was still running.
func (c *Containers) CloseStream(id string) bool { return c.b.streams.cancel(id) }

// lineBatcher groups output into lines and emits them at most every 50 ms,
// so a chatty container does not flood the window with one event per line.
type lineBatcher struct {
	mu      sync.Mutex
	emit    func(LogChunk)
	pending []LogLine
	partial map[string]string
	timer   *time.Timer
}

const maxLineBytes = 16 << 10

func newLineBatcher(emit func(LogChunk)) *lineBatcher {
	return &lineBatcher{emit: emit, partial: map[string]string{}}
}

type streamWriter struct {
	lb     *lineBatcher
	stream string
}

func (lb *lineBatcher) writer(stream string) io.Writer { return streamWriter{lb, stream} }

func (w streamWriter) Write(p []byte) (int, error) {
	lb := w.lb
	lb.mu.Lock()
	defer lb.mu.Unlock()
	s := lb.partial[w.stream] + string(p)
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		lb.pending = append(lb.pending, LogLine{Stream: w.stream, Text: strings.TrimSuffix(s[:i], "\r")})
		s = s[i+1:]
	}
	if len(s) > maxLineBytes { // a line without end: show it in pieces
		lb.pending = append(lb.pending, LogLine{Stream: w.stream, Text: s})
		s = ""
	}
	lb.partial[w.stream] = s
	if len(lb.pending) > 0 && lb.timer == nil {
		lb.timer = time.AfterFunc(50*time.Millisecond, lb.flush)
	}
	return len(p), nil
}

func (lb *lineBatcher) flush() {
	lb.mu.Lock()
	lines := lb.pending
	lb.pending, lb.timer = nil, nil
	lb.mu.Unlock()
	if len(lines) > 0 {
		lb.emit(LogChunk{Lines: lines})
	}
}

// close flushes what is left (an unterminated last line too) and sends end.
func (lb *lineBatcher) close(end LogChunk) {
	lb.mu.Lock()
	if lb.timer != nil {
		lb.timer.Stop()
	}
	lines := lb.pending
	for _, st := range []string{"stdout", "stderr"} {
		if s := lb.partial[st]; s != "" {
			lines = append(lines, LogLine{Stream: st, Text: s})
		}
	}
	lb.pending, lb.timer, lb.partial = nil, nil, map[string]string{}
	lb.mu.Unlock()
	end.Lines = lines
	lb.emit(end)
}

// StatsSample is one point of the stats graph.
type StatsSample struct {
	Time       int64   `json:"time"` // unix ms
	CPUPercent float64 `json:"cpuPercent"`
	MemBytes   uint64  `json:"memBytes"`
	MemLimit   uint64  `json:"memLimit"`
	NetRx      uint64  `json:"netRx"`
	NetTx      uint64  `json:"netTx"`
	Pids       uint64  `json:"pids"`
	Done       bool    `json:"done,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// Stats streams a running container's resource use to "stats:ID" events
// (about one sample a second, as the engine sends them).
func (c *Containers) Stats(id string) (string, error) {
	b := c.b
	sid, sctx, _ := b.streams.add(b.ctx)
	res, err := b.docker.ContainerStats(sctx, id, client.ContainerStatsOptions{Stream: true})
	if err != nil {
		b.streams.done(sid)
		return "", engineError("stats of "+shortID(id), err)
	}
	go func() {
		defer b.streams.done(sid)
		defer res.Body.Close()
		dec := json.NewDecoder(bufio.NewReader(res.Body))
		var prev *container.StatsResponse
		for {
			var s container.StatsResponse
			if err := dec.Decode(&s); err != nil {
				end := StatsSample{Done: true}
				if !errors.Is(err, io.EOF) && sctx.Err() == nil {
					end.Error = engineError("stats", err).Error()
				}
				b.emit.Emit(EventStats+":"+sid, end)
				return
			}
			b.emit.Emit(EventStats+":"+sid, statsSample(&s, prev))
			prev = &s
		}
	}()
	return sid, nil
}

// statsSample computes what `docker stats` shows: CPU % from the deltas
// between two samples (the engine's precpu_stats, else our previous one),
// memory without the page cache.
func statsSample(s, prev *container.StatsResponse) StatsSample {
	out := StatsSample{Time: s.Read.UnixMilli(), MemLimit: s.MemoryStats.Limit, Pids: s.PidsStats.Current}
	pre := s.PreCPUStats
	if pre.CPUUsage.TotalUsage == 0 && prev != nil {
		pre = prev.CPUStats
	}
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(pre.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(pre.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpuDelta > 0 && sysDelta > 0 && online > 0 {
		out.CPUPercent = cpuDelta / sysDelta * online * 100
	}
	mem := s.MemoryStats.Usage
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := s.MemoryStats.Stats[k]; ok && v < mem {
			mem -= v
			break
		}
	}
	out.MemBytes = mem
	for _, n := range s.Networks {
		out.NetRx += n.RxBytes
		out.NetTx += n.TxBytes
	}
	return out
}

func shortID(id string) string {
	if len(id) == 64 {
		return id[:12]
	}
	return id
}
