//go:build linux

package engineapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	ctr "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/runtime/errdefs"
	rtimage "github.com/berth-dev/berth/runtime/image"
)

// Older API versions: clients that pin one (DOCKER_API_VERSION=1.41 is
// common in CI) get what a current dockerd answers them. The runtime
// speaks the newest API; this file adapts requests and responses to the
// version a request names, as dockerd's routers do (the version numbers
// below are those of the Engine API's version history).

// apiBefore reports whether the request's API version is older than v.
func apiBefore(r *http.Request, v string) bool { return versionLess(apiVersion(r), v) }

// wrapped is a response with fields added to its JSON (only where the
// response has none, or null), as dockerd's compat.Wrap adds them.
type wrapped struct {
	base  any
	extra map[string]any
	omit  []string
}

func (w wrapped) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(w.base)
	if err != nil || (len(w.extra) == 0 && len(w.omit) == 0) {
		return b, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range w.omit {
		delete(m, k)
	}
	addFields(w.extra, m)
	return json.Marshal(m)
}

func addFields(src, dst map[string]any) {
	for k, v := range src {
		if vm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				addFields(vm, dm)
				continue
			}
		}
		if old, ok := dst[k]; !ok || old == nil {
			dst[k] = v
		}
	}
}

// createCompat adapts a create request to the client's API version and
// returns the warnings dockerd adds; legacyMAC is the container-wide
// MacAddress older clients send (gone from the current types).
func createCompat(r *http.Request, req *ctr.CreateRequest, legacyMAC string) ([]string, error) {
	if req.HostConfig == nil {
		req.HostConfig = &ctr.HostConfig{}
	}
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &network.NetworkingConfig{}
	}
	hc, nc := req.HostConfig, req.NetworkingConfig
	if apiBefore(r, "1.40") && hc.IpcMode == "" {
		hc.IpcMode = ctr.IPCModeShareable // the default before 1.40
	}
	if apiBefore(r, "1.42") {
		for i := range hc.Mounts {
			m := &hc.Mounts[i]
			if m.VolumeOptions != nil && m.Type != mount.TypeVolume {
				m.VolumeOptions = nil
			}
			if m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
				m.TmpfsOptions = nil
			}
			if m.BindOptions != nil {
				m.BindOptions.CreateMountpoint = false
			}
		}
		hc.ConsoleSize = [2]uint{} // not honoured on Linux before 1.42
	} else {
		for _, m := range hc.Mounts {
			switch {
			case m.VolumeOptions != nil && m.Type != mount.TypeVolume:
				return nil, errdefs.InvalidArgument("VolumeOptions must not be specified on mount type %q", m.Type)
			case m.BindOptions != nil && m.Type != mount.TypeBind:
				return nil, errdefs.InvalidArgument("BindOptions must not be specified on mount type %q", m.Type)
			case m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs:
				return nil, errdefs.InvalidArgument("TmpfsOptions must not be specified on mount type %q", m.Type)
			}
		}
	}
	if apiBefore(r, "1.43") {
		hc.Annotations = nil
	}
	if apiBefore(r, "1.44") {
		if req.Config.Healthcheck != nil {
			req.Config.Healthcheck.StartInterval = 0
		}
		if len(nc.EndpointsConfig) > 1 {
			names := slices.Sorted(func(yield func(string) bool) {
				for k := range nc.EndpointsConfig {
					if !yield(k) {
						return
					}
				}
			})
			return nil, errdefs.InvalidArgument("Container cannot be created with multiple network endpoints: %s", strings.Join(names, ", "))
		}
	}
	if apiBefore(r, "1.45") {
		for _, m := range hc.Mounts {
			if m.VolumeOptions != nil && m.VolumeOptions.Subpath != "" {
				return nil, errdefs.InvalidArgument("VolumeOptions.Subpath needs API v1.45 or newer")
			}
		}
	}
	if apiBefore(r, "1.48") {
		for _, ep := range nc.EndpointsConfig {
			if ep != nil {
				ep.GwPriority = 0
			}
		}
		for _, m := range hc.Mounts {
			if m.Type == mount.TypeImage {
				return nil, errdefs.InvalidArgument(`Mount type "Image" needs API v1.48 or newer`)
			}
		}
	}
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		hc.PidsLimit = nil // 0 and -1 both mean unlimited
	}
	if apiBefore(r, "1.52") {
		return macAddressCompat(r, hc, nc, legacyMAC)
	}
	if legacyMAC != "" {
		return nil, errdefs.InvalidArgument("container-wide MAC address no longer supported; use endpoint-specific MAC address instead")
	}
	return nil, nil
}

// macAddressCompat moves the container-wide MacAddress of API < 1.52 to
// the endpoint of the container's main network, as dockerd does.
func macAddressCompat(r *http.Request, hc *ctr.HostConfig, nc *network.NetworkingConfig, legacy string) ([]string, error) {
	if apiBefore(r, "1.44") && legacy == "" {
		for _, ep := range nc.EndpointsConfig {
			if ep != nil {
				ep.MacAddress = nil // older clients could not set it there
			}
		}
		return nil, nil
	}
	if legacy == "" {
		return nil, nil
	}
	var mac network.HardwareAddr
	if err := mac.UnmarshalText([]byte(legacy)); err != nil {
		return nil, errdefs.InvalidArgument("invalid MAC address %q: %v", legacy, err)
	}
	mode := hc.NetworkMode
	userDefined := !(mode == "" || mode.IsDefault() || mode.IsBridge() || mode.IsHost() || mode.IsNone() || mode.IsContainer())
	if !(mode == "" || mode.IsDefault() || mode.IsBridge() || userDefined) {
		if apiBefore(r, "1.44") {
			return nil, errdefs.InvalidArgument("conflicting options: mac-address and the network mode")
		}
		return []string{"The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead."}, nil
	}
	name := string(mode)
	if name == "" || mode.IsDefault() {
		name = network.NetworkBridge
	}
	if nc.EndpointsConfig == nil {
		nc.EndpointsConfig = map[string]*network.EndpointSettings{}
	}
	ep := nc.EndpointsConfig[name]
	if ep == nil {
		ep = &network.EndpointSettings{}
		nc.EndpointsConfig[name] = ep
	}
	if apiBefore(r, "1.44") {
		ep.MacAddress = mac
		return nil, nil
	}
	if len(ep.MacAddress) == 0 {
		ep.MacAddress = mac
	} else if !bytes.Equal(ep.MacAddress, mac) {
		return nil, errdefs.InvalidArgument("the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty")
	}
	return []string{"The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead."}, nil
}

// inspectCompat is a container's inspect for the request's API version;
// desiredMAC is the MAC address asked for on its main network.
func inspectCompat(r *http.Request, resp *ctr.InspectResponse, desiredMAC string) any {
	if apiBefore(r, "1.45") && resp.NetworkSettings != nil && resp.Config != nil {
		// Older clients find a container on user networks by its short ID
		// and hostname among the aliases.
		for name, ep := range resp.NetworkSettings.Networks {
			if ep == nil || !userDefinedNetwork(name) {
				continue
			}
			ep.Aliases = dedup(append(ep.Aliases, resp.ID[:12], resp.Config.Hostname))
		}
	}
	if apiBefore(r, "1.48") {
		resp.ImageManifestDescriptor = nil
	}
	if !apiBefore(r, "1.52") {
		return resp
	}
	extra := map[string]any{}
	if resp.NetworkSettings != nil {
		if br := resp.NetworkSettings.Networks[network.NetworkBridge]; br != nil {
			// The default bridge's settings at the top level, deprecated in
			// 1.44 and gone in 1.52.
			extra["NetworkSettings"] = map[string]any{
				"EndpointID": br.EndpointID, "Gateway": br.Gateway, "GlobalIPv6Address": br.GlobalIPv6Address,
				"GlobalIPv6PrefixLen": br.GlobalIPv6PrefixLen, "IPAddress": br.IPAddress, "IPPrefixLen": br.IPPrefixLen,
				"IPv6Gateway": br.IPv6Gateway, "MacAddress": br.MacAddress,
			}
		}
	}
	if desiredMAC != "" {
		extra["Config"] = map[string]any{"MacAddress": desiredMAC}
	}
	return wrapped{base: resp, extra: extra}
}

func userDefinedNetwork(name string) bool {
	m := ctr.NetworkMode(name)
	return !(m.IsDefault() || m.IsBridge() || m.IsHost() || m.IsNone() || m.IsContainer())
}

func dedup(s []string) []string {
	var out []string
	for _, x := range s {
		if x != "" && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// listCompat is GET /containers/json for the request's API version.
func listCompat(r *http.Request, list []ctr.Summary) []ctr.Summary {
	for i := range list {
		if apiBefore(r, "1.46") {
			list[i].HostConfig.Annotations = nil
		}
		if apiBefore(r, "1.48") {
			list[i].ImageManifestDescriptor = nil
		}
		if apiBefore(r, "1.52") {
			list[i].Health = nil
		}
	}
	return list
}

var legacyImageConfig = map[string]map[string]any{
	"1.49": {"AttachStderr": false, "AttachStdin": false, "AttachStdout": false, "Cmd": nil, "Domainname": "",
		"Entrypoint": nil, "Env": nil, "Hostname": "", "Image": "", "Labels": nil, "OnBuild": nil, "OpenStdin": false,
		"StdinOnce": false, "Tty": false, "User": "", "Volumes": nil, "WorkingDir": ""},
	"1.51": {"Cmd": nil, "Entrypoint": nil, "Env": nil, "Labels": nil, "OnBuild": nil, "User": "", "Volumes": nil, "WorkingDir": ""},
}

// imageInspectCompat is an image's inspect for the request's API version.
func imageInspectCompat(r *http.Request, resp image.InspectResponse, legacy rtimage.Legacy) any {
	if resp.RepoTags == nil {
		resp.RepoTags = []string{}
	}
	if resp.RepoDigests == nil {
		resp.RepoDigests = []string{}
	}
	extra := map[string]any{}
	if apiBefore(r, "1.44") {
		extra["VirtualSize"] = resp.Size
		if resp.Created == "" {
			resp.Created = time.Time{}.Format(time.RFC3339Nano)
		}
	}
	if apiBefore(r, "1.45") {
		cc := legacy.ContainerConfig
		if cc == nil {
			cc = &ctr.Config{}
		}
		extra["Container"] = legacy.Container
		extra["ContainerConfig"] = cc
	}
	if apiBefore(r, "1.48") {
		resp.Descriptor = nil
	}
	if apiBefore(r, "1.52") {
		extra["Parent"] = legacy.Parent
		extra["Comment"] = legacy.Comment
		extra["DockerVersion"] = legacy.DockerVersion
		extra["Author"] = resp.Author
		if apiBefore(r, "1.50") {
			extra["Config"] = legacyImageConfig["1.49"]
		} else {
			extra["Config"] = legacyImageConfig["1.51"]
		}
	} else {
		if legacy.Parent != "" {
			extra["Parent"] = legacy.Parent
		}
		if legacy.DockerVersion != "" {
			extra["DockerVersion"] = legacy.DockerVersion
		}
	}
	return wrapped{base: resp, extra: extra}
}

// imageListCompat is GET /images/json for the request's API version.
func imageListCompat(r *http.Request, list []image.Summary) any {
	for i := range list {
		im := &list[i]
		if apiBefore(r, "1.43") {
			if len(im.RepoTags) == 0 && len(im.RepoDigests) == 0 {
				im.RepoTags, im.RepoDigests = []string{"<none>:<none>"}, []string{"<none>@<none>"}
			}
		}
		if im.RepoTags == nil {
			im.RepoTags = []string{}
		}
		if im.RepoDigests == nil {
			im.RepoDigests = []string{}
		}
		if apiBefore(r, "1.48") {
			im.Descriptor = nil
		}
		if apiBefore(r, "1.51") {
			im.Containers = -1
		}
	}
	if !apiBefore(r, "1.44") {
		return list
	}
	out := make([]wrapped, len(list))
	for i := range list {
		out[i] = wrapped{base: &list[i], extra: map[string]any{"VirtualSize": list[i].Size}}
	}
	return out
}
