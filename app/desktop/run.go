package desktop

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/app/config"
)

// RunRequest is the Run dialog: what `docker run -d` would be given.
type RunRequest struct {
	Image string `json:"image"`
	Name  string `json:"name"`
	// Ports are [IP:]HOST:CONTAINER[/udp] or CONTAINER[/udp] (an ephemeral host port).
	Ports []string `json:"ports"`
	Env   []string `json:"env"` // KEY=VALUE
	// Volumes are NAME:/path or /host/path:/path, with an optional :ro.
	Volumes []string `json:"volumes"`
	// Command overrides the image's CMD; words split as a shell would
	// (quotes group, no expansion).
	Command string `json:"command"`
	// Restart is no, always, unless-stopped or on-failure[:N].
	Restart    string `json:"restart"`
	AutoRemove bool   `json:"autoRemove"`
}

// RunResult is a started container, or the dialog's field errors.
type RunResult struct {
	ID     string               `json:"id,omitempty"`
	Fields []*config.FieldError `json:"fields,omitempty"`
}

// Run creates and starts a container from the dialog. Invalid fields come
// back in Fields (nothing is created); engine refusals as the error.
func (im *Images) Run(req RunRequest) (RunResult, error) {
	cfg, hc, name, fields := req.spec()
	if len(fields) > 0 {
		return RunResult{Fields: fields}, nil
	}
	ctx, cancel := im.b.opCtx(2 * time.Minute)
	defer cancel()
	id, err := im.b.run(ctx, cfg, hc, name)
	return RunResult{ID: id}, err
}

// RunHello runs the bundled hello image (the first-run card) and returns
// the container ID; its output is in its logs.
func (im *Images) RunHello() (string, error) {
	ctx, cancel := im.b.opCtx(2 * time.Minute)
	defer cancel()
	return im.b.run(ctx, &container.Config{Image: HelloImage}, &container.HostConfig{}, "")
}

func (b *Backend) run(ctx context.Context, cfg *container.Config, hc *container.HostConfig, name string) (string, error) {
	res, err := b.docker.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: name})
	if err != nil {
		return "", engineError("run "+cfg.Image, err)
	}
	if _, err := b.docker.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return res.ID, engineError("start "+cfg.Image, err)
	}
	return res.ID, nil
}

// spec checks every field and builds the create request.
func (r RunRequest) spec() (*container.Config, *container.HostConfig, string, []*config.FieldError) {
	var fields []*config.FieldError
	bad := func(field, format string, args ...any) {
		fields = append(fields, &config.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	img := strings.TrimSpace(r.Image)
	if err := validImageRef(img); err != nil {
		bad("image", "%v", err)
	}
	name := strings.TrimSpace(r.Name)
	if name != "" && !validName(name) {
		bad("name", "%q: use letters, digits and _ . - (starting with a letter or digit)", name)
	}
	cfg := &container.Config{Image: img, ExposedPorts: network.PortSet{}}
	hc := &container.HostConfig{PortBindings: network.PortMap{}, AutoRemove: r.AutoRemove}
	for _, p := range nonEmpty(r.Ports) {
		port, binding, err := parsePublish(p)
		if err != nil {
			bad("ports", "%q: %v", p, err)
			continue
		}
		cfg.ExposedPorts[port] = struct{}{}
		hc.PortBindings[port] = append(hc.PortBindings[port], binding)
	}
	for _, e := range nonEmpty(r.Env) {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			bad("env", "%q: want KEY=VALUE", e)
			continue
		}
		cfg.Env = append(cfg.Env, e)
	}
	for _, v := range nonEmpty(r.Volumes) {
		if err := checkVolume(v); err != nil {
			bad("volumes", "%q: %v", v, err)
			continue
		}
		hc.Binds = append(hc.Binds, v)
	}
	if c := strings.TrimSpace(r.Command); c != "" {
		words, err := splitWords(c)
		if err != nil {
			bad("command", "%v", err)
		}
		cfg.Cmd = words
	}
	rp, err := parseRestart(r.Restart)
	if err != nil {
		bad("restart", "%v", err)
	}
	hc.RestartPolicy = rp
	if r.AutoRemove && rp.Name != container.RestartPolicyDisabled && rp.Name != "" {
		bad("restart", "a container removed when it exits cannot have a restart policy")
	}
	return cfg, hc, name, fields
}

func validImageRef(s string) error {
	if s == "" {
		return errors.New("name an image")
	}
	if _, err := reference.ParseNormalizedNamed(s); err != nil {
		return fmt.Errorf("%q is not a valid image reference", s)
	}
	return nil
}

// validName is dockerd's rule for container names: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
func validName(s string) bool {
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '.' && c != '-')) {
			return false
		}
	}
	return s != ""
}

// parsePublish reads [IP:]HOST:CONTAINER[/proto] or CONTAINER[/proto].
func parsePublish(s string) (network.Port, network.PortBinding, error) {
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto && proto != "tcp" && proto != "udp" && proto != "sctp" {
		return network.Port{}, network.PortBinding{}, fmt.Errorf("protocol %q: want tcp, udp or sctp", proto)
	}
	if !hasProto {
		proto = "tcp"
	}
	var ipStr, host, ctr string
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 1:
		ctr = parts[0]
	case 2:
		host, ctr = parts[0], parts[1]
	default:
		// An IPv6 address holds colons: the last two fields are the ports.
		ipStr = strings.Trim(strings.Join(parts[:len(parts)-2], ":"), "[]")
		host, ctr = parts[len(parts)-2], parts[len(parts)-1]
	}
	var b network.PortBinding
	if ipStr != "" {
		ip, err := netip.ParseAddr(ipStr)
		if err != nil {
			return network.Port{}, b, fmt.Errorf("bad host IP %q", ipStr)
		}
		b.HostIP = ip
	}
	if host != "" {
		if n, err := strconv.Atoi(host); err != nil || n < 1 || n > 65535 {
			return network.Port{}, b, fmt.Errorf("bad host port %q (1-65535)", host)
		}
		b.HostPort = host
	}
	if n, err := strconv.Atoi(ctr); err != nil || n < 1 || n > 65535 {
		return network.Port{}, b, fmt.Errorf("bad container port %q (1-65535)", ctr)
	}
	p, err := network.ParsePort(ctr + "/" + proto)
	return p, b, err
}

func checkVolume(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return errors.New("want NAME:/path or /host/path:/path, optionally :ro")
	}
	if !strings.HasPrefix(parts[1], "/") {
		return fmt.Errorf("the container path %q must be absolute", parts[1])
	}
	if len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw" {
		return fmt.Errorf("mode %q: want ro or rw", parts[2])
	}
	return nil
}

func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(strings.TrimSpace(s), ":")
	switch container.RestartPolicyMode(name) {
	case "", container.RestartPolicyDisabled:
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}, nil
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hasCount {
			return container.RestartPolicy{}, fmt.Errorf("%s takes no retry count", name)
		}
		return container.RestartPolicy{Name: container.RestartPolicyMode(name)}, nil
	case container.RestartPolicyOnFailure:
		rp := container.RestartPolicy{Name: container.RestartPolicyOnFailure}
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return rp, fmt.Errorf("retry count %q: want a number ≥ 0", count)
			}
			rp.MaximumRetryCount = n
		}
		return rp, nil
	}
	return container.RestartPolicy{}, fmt.Errorf("%q: want no, always, unless-stopped or on-failure[:N]", s)
}

// splitWords splits a command line into words: blanks separate, single
// and double quotes group, backslash escapes. No expansion happens.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, c := range s {
		switch {
		case escaped:
			cur.WriteRune(c)
			escaped = false
		case c == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote", quote)
	}
	if escaped {
		return nil, errors.New("the command ends with a lone backslash")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func nonEmpty(xs []string) []string {
	var out []string
	for _, x := range xs {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
