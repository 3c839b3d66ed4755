//go:build linux

package image

import (
	"encoding/json"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// ApplyChanges applies `docker commit --change` instructions to cfg: the
// Dockerfile instructions that only touch the config (CMD, ENTRYPOINT, ENV,
// EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR), as dockerd
// accepts them.
func ApplyChanges(cfg *v1.Config, changes []string) error {
	for _, c := range changes {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		instr, args, _ := strings.Cut(c, " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(instr) {
		case "CMD", "ENTRYPOINT":
			cmd, err := commandForm(cfg, args)
			if err != nil {
				return errdefs.InvalidArgument("%s: %v", c, err)
			}
			if strings.EqualFold(instr, "CMD") {
				cfg.Cmd = cmd
			} else {
				cfg.Entrypoint = cmd
			}
		case "ENV", "LABEL":
			kv, err := keyValues(args, strings.EqualFold(instr, "ENV"))
			if err != nil {
				return errdefs.InvalidArgument("%s: %v", c, err)
			}
			for _, p := range kv {
				if strings.EqualFold(instr, "ENV") {
					cfg.Env = setEnv(cfg.Env, p[0], p[1])
				} else {
					if cfg.Labels == nil {
						cfg.Labels = map[string]string{}
					}
					cfg.Labels[p[0]] = p[1]
				}
			}
		case "EXPOSE":
			fields := strings.Fields(args)
			if len(fields) == 0 {
				return errdefs.InvalidArgument("%s: no port given", c)
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range fields {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				cfg.ExposedPorts[strings.ToLower(p)] = struct{}{}
			}
		case "VOLUME":
			vols, err := listForm(args)
			if err != nil {
				return errdefs.InvalidArgument("%s: %v", c, err)
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				cfg.Volumes[v] = struct{}{}
			}
		case "WORKDIR":
			if args == "" {
				return errdefs.InvalidArgument("%s: no directory given", c)
			}
			if !path.IsAbs(args) {
				args = path.Join("/", cfg.WorkingDir, args)
			}
			cfg.WorkingDir = path.Clean(args)
		case "USER":
			cfg.User = args
		case "STOPSIGNAL":
			cfg.StopSignal = args
		case "ONBUILD":
			cfg.OnBuild = append(cfg.OnBuild, args)
		default:
			return errdefs.InvalidArgument("%s is not a valid change command", strings.ToUpper(instr))
		}
	}
	return nil
}

// commandForm reads the exec form (a JSON array) or the shell form, which
// runs under the image's SHELL (default /bin/sh -c).
func commandForm(cfg *v1.Config, args string) ([]string, error) {
	if strings.HasPrefix(args, "[") {
		var list []string
		if err := json.Unmarshal([]byte(args), &list); err == nil {
			return list, nil
		}
	}
	shell := cfg.Shell
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return append(append([]string(nil), shell...), args), nil
}

func listForm(args string) ([]string, error) {
	if strings.HasPrefix(args, "[") {
		var list []string
		if err := json.Unmarshal([]byte(args), &list); err == nil {
			return list, nil
		}
	}
	return words(args)
}

// keyValues reads "k=v k2='v 2'" pairs; ENV also takes the legacy "k v w"
// form, where everything after the first word is the value.
func keyValues(args string, legacy bool) ([][2]string, error) {
	ws, err := words(args)
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, errdefs.InvalidArgument("no key=value given")
	}
	if legacy && !strings.Contains(ws[0], "=") {
		k, v, _ := strings.Cut(args, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, w := range ws {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, errdefs.InvalidArgument("%q is not key=value", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// words splits on blanks, honouring single and double quotes and
// backslash escapes (the quotes are removed).
func words(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quote, escaped := false, rune(0), false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, in = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 || escaped {
		return nil, errdefs.InvalidArgument("unterminated quote or escape in %q", s)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
