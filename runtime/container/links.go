//go:build linux

package container

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"unicode"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/runtime/errdefs"
	bnet "github.com/berth-dev/berth/runtime/network"
)

// Legacy links (--link NAME[:ALIAS]), as dockerd keeps them: recorded at
// create as "/NAME:/PARENT/ALIAS", and at each start the linked container
// (which must be running) is written into the parent's /etc/hosts under
// the alias, its hostname and its name; on the default bridge the parent
// also gets dockerd's ALIAS_PORT_*, ALIAS_NAME and ALIAS_ENV_* variables.

// normalizeLinks checks hc.Links at create and rewrites them in dockerd's
// recorded form.
func (m *Manager) normalizeLinks(hc *ctr.HostConfig, parent string) error {
	if len(hc.Links) == 0 {
		return nil
	}
	if hc.NetworkMode.IsHost() {
		return errdefs.InvalidArgument("conflicting options: host type networking can't be used with links. This would result in undefined behavior")
	}
	if hc.NetworkMode.IsContainer() {
		return errdefs.InvalidArgument("conflicting options: container type network can't be used with links. This would result in undefined behavior")
	}
	out := make([]string, 0, len(hc.Links))
	for _, l := range hc.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return err
		}
		child, err := m.Get(name)
		if err != nil {
			return errdefs.NotFound("could not get container for %s", name)
		}
		out = append(out, "/"+child.snapshot().Name+":/"+parent+"/"+alias)
	}
	hc.Links = out
	return nil
}

// parseLink reads "NAME[:ALIAS]" or the recorded "/NAME:/PARENT/ALIAS".
func parseLink(l string) (name, alias string, err error) {
	name, alias, _ = strings.Cut(l, ":")
	name = strings.TrimPrefix(name, "/")
	if i := strings.LastIndexByte(alias, '/'); i >= 0 {
		alias = alias[i+1:]
	}
	if alias == "" {
		alias = name
	}
	if name == "" || !validName.MatchString(name) {
		return "", "", errdefs.InvalidArgument("invalid link %q: want NAME[:ALIAS]", l)
	}
	return name, alias, nil
}

// linkInfo is what a start adds for rec's links, with sb the
// parent's network (nil without one).
func (m *Manager) linkInfo(rec *record, sb *bnet.Sandbox) (hosts, env []string, err error) {
	if len(rec.HostConfig.Links) == 0 || sb == nil {
		return nil, nil, nil
	}
	parentNets := sb.Endpoints()
	for _, l := range rec.HostConfig.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return nil, nil, err
		}
		child, err := m.Get(name)
		if err != nil {
			return nil, nil, errdefs.NotFound("could not get container for %s", name)
		}
		crec, csb := child.snapshotRun()
		if csb == nil || !crec.State.Running() {
			return nil, nil, errdefs.Conflict("Cannot link to a non running container: /%s AS /%s/%s", crec.Name, rec.Name, alias)
		}
		ip, netName := "", ""
		childNets := csb.Endpoints()
		for _, n := range append([]string{network.NetworkBridge}, slices.Sorted(mapKeys(parentNets))...) {
			if es := childNets[n]; es != nil && parentNets[n] != nil && es.IPAddress.IsValid() {
				ip, netName = es.IPAddress.String(), n
				break
			}
		}
		if ip == "" {
			return nil, nil, errdefs.Conflict("cannot link to /%s: it shares no network with /%s", crec.Name, rec.Name)
		}
		names := []string{alias}
		for _, n := range []string{crec.Config.Hostname, crec.Name} {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		hosts = append(hosts, ip+"\t"+strings.Join(names, " "))
		if netName == network.NetworkBridge {
			env = append(env, linkVars(alias, rec.Name, ip, crec)...)
		}
	}
	return hosts, env, nil
}

// linkVars are dockerd's environment variables for one link.
func linkVars(alias, parent, ip string, child record) []string {
	prefix := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToUpper(r)
		}
		return '_'
	}, alias)
	var env []string
	ports := ports(child.Config.ExposedPorts) // sorted
	if len(ports) > 0 {
		p := ports[0]
		env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%d", prefix, p.Type, ip, p.PrivatePort))
	}
	for _, p := range ports {
		base := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.PrivatePort, strings.ToUpper(p.Type))
		env = append(env, fmt.Sprintf("%s=%s://%s:%d", base, p.Type, ip, p.PrivatePort),
			base+"_ADDR="+ip, fmt.Sprintf("%s_PORT=%d", base, p.PrivatePort), base+"_PROTO="+p.Type)
	}
	env = append(env, fmt.Sprintf("%s_NAME=/%s/%s", prefix, parent, alias))
	for _, kv := range child.Config.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		env = append(env, fmt.Sprintf("%s_ENV_%s=%s", prefix, k, v))
	}
	return env
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkWorkdir refuses at create a working directory the image has as a
// file, as dockerd (which makes the directory at create) refuses it.
func checkWorkdir(rootfs, dir string) error {
	if dir == "" {
		return nil
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil // the start will say
	}
	defer root.Close()
	rel := strings.TrimPrefix(path.Clean("/"+dir), "/")
	if rel == "" {
		return nil
	}
	st, err := root.Stat(rel)
	if err == nil && !st.IsDir() {
		return errdefs.As(errdefs.KindUnknown, fmt.Errorf("Cannot mkdir: %s is not a directory", dir))
	}
	return nil
}

// RemoveLink removes the link "PARENT/ALIAS" (DELETE /containers/{name}?link=1).
func (m *Manager) RemoveLink(ref string) error {
	parentName, alias, ok := strings.Cut(strings.TrimPrefix(ref, "/"), "/")
	if !ok || alias == "" {
		return errdefs.InvalidArgument("Conflict, cannot remove the default link name of the container")
	}
	parent, err := m.Get(parentName)
	if err != nil {
		return err
	}
	parent.mu.Lock()
	defer parent.mu.Unlock()
	links := parent.rec.HostConfig.Links
	kept := slices.DeleteFunc(slices.Clone(links), func(l string) bool {
		_, a, _ := parseLink(l)
		return a == alias
	})
	if len(kept) == len(links) {
		return errdefs.NotFound("Could not find container for entity id %s", ref)
	}
	parent.rec.HostConfig.Links = kept
	return parent.saveLocked()
}
