//go:build linux

package buildkit

import "strings"

// proxyArgNames are the Dockerfile frontend's predefined proxy build args:
// RUN steps see them without an ARG, and they stay out of the image's
// history.
var proxyArgNames = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}

// ProxyBuildArgs are the predefined proxy build args for the proxy the
// engine uses (its settings), in upper and lower case as Docker sets them.
func ProxyBuildArgs(httpProxy, httpsProxy, noProxy string) map[string]string {
	args := map[string]string{}
	for i, v := range []string{httpProxy, httpsProxy, noProxy} {
		if v != "" {
			args[proxyArgNames[i]] = v
			args[strings.ToLower(proxyArgNames[i])] = v
		}
	}
	return args
}

// addProxyArgs sets in a frontend's attrs the proxy build args the client
// did not set itself (its own --build-arg HTTP_PROXY=… wins).
func addProxyArgs(attrs map[string]string, args map[string]string) {
	for k, v := range args {
		if _, ok := attrs["build-arg:"+k]; !ok {
			attrs["build-arg:"+k] = v
		}
	}
}

// AddProxyArgs is addProxyArgs with this builder's proxy, for solve
// requests that reach the control API directly (buildx).
func (b *Builder) AddProxyArgs(attrs map[string]string) map[string]string {
	if len(b.proxyArgs) == 0 {
		return attrs
	}
	if attrs == nil {
		attrs = map[string]string{}
	}
	addProxyArgs(attrs, b.proxyArgs)
	return attrs
}
