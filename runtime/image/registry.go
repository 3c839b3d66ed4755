//go:build linux

package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/registry"
	"golang.org/x/net/http/httpproxy"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// DecodeAuth decodes an X-Registry-Auth header value (base64url JSON of
// registry.AuthConfig, padded or not). An empty header is no credentials.
func DecodeAuth(header string) (*registry.AuthConfig, error) {
	if header == "" {
		return nil, nil
	}
	raw, err := base64.URLEncoding.DecodeString(header)
	if err != nil {
		raw, err = base64.RawURLEncoding.DecodeString(header)
	}
	if err != nil {
		return nil, errdefs.InvalidArgument("invalid X-Registry-Auth header: %v", err)
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		return nil, errdefs.InvalidArgument("invalid X-Registry-Auth header: %v", err)
	}
	return &ac, nil
}

func authenticator(ac *registry.AuthConfig) authn.Authenticator {
	if ac == nil || (ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "") {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken})
}

// plainHTTP reports whether registry host (host[:port]) may be reached
// without TLS: loopback addresses, localhost, --insecure-registry hosts and
// mirrors given as http:// URLs.
func (s *Store) plainHTTP(host string) bool {
	for _, h := range s.opts.InsecureRegistries {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://"), "/")
		if h == host {
			return true
		}
		if hn, _, err := net.SplitHostPort(host); err == nil && h == hn {
			return true
		}
	}
	for _, m := range s.opts.Mirrors {
		if u, err := url.Parse(m); err == nil && u.Scheme == "http" && u.Host == host {
			return true
		}
	}
	hn := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hn = h
	}
	hn = strings.Trim(hn, "[]")
	if hn == "localhost" {
		return true
	}
	ip := net.ParseIP(hn)
	return ip != nil && ip.IsLoopback()
}

// remoteRef turns a normalized reference into go-containerregistry's, marked
// insecure when plain HTTP is allowed for its registry.
func (s *Store) remoteRef(named reference.Named) (name.Reference, error) {
	host := reference.Domain(named)
	if host == "docker.io" && s.opts.DockerHub != "" {
		host = s.opts.DockerHub
	}
	return s.refAt(host, named)
}

// refAt is named's repository and tag or digest on registry host.
func (s *Store) refAt(host string, named reference.Named) (name.Reference, error) {
	str := host + "/" + reference.Path(named)
	if t, ok := named.(reference.Tagged); ok {
		str += ":" + t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		str += "@" + d.Digest().String()
	}
	var opts []name.Option
	if s.plainHTTP(host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(str, opts...)
	if err != nil {
		return nil, errdefs.InvalidArgument("invalid reference %s: %v", named, err)
	}
	return r, nil
}

// endpoint is one place an image can be fetched from.
type endpoint struct {
	ref    name.Reference
	mirror string // the mirror's URL; "" for the image's own registry
}

// pullEndpoints are where named is fetched from, in order: for Docker
// Hub's images each registry mirror, then Docker Hub itself (dockerd's
// order); for other registries the registry alone.
func (s *Store) pullEndpoints(named reference.Named) ([]endpoint, error) {
	var eps []endpoint
	if reference.Domain(named) == "docker.io" {
		for _, m := range s.opts.Mirrors {
			u, err := url.Parse(m)
			if err != nil || u.Host == "" {
				return nil, errdefs.InvalidArgument("registry mirror %q is not an http(s) URL", m)
			}
			r, err := s.refAt(u.Host, named)
			if err != nil {
				return nil, err
			}
			eps = append(eps, endpoint{ref: r, mirror: m})
		}
	}
	r, err := s.remoteRef(named)
	if err != nil {
		return nil, err
	}
	return append(eps, endpoint{ref: r}), nil
}

// remoteOptions are the options of every registry call: credentials, the
// context, and a transport that only speaks plain HTTP where allowed
// (go-containerregistry itself would also try it for private networks).
func (s *Store) remoteOptions(ctx context.Context, ac *registry.AuthConfig) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(authenticator(ac)),
		remote.WithTransport(s.transport()), remote.WithUserAgent("berth")}
}

// transport is the registries' HTTP transport: the engine's proxy (never
// the process's environment: the settings say), plain HTTP only where
// allowed.
func (s *Store) transport() http.RoundTripper {
	base := remote.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = ProxyFunc(s.opts.Proxy)
	return httpGuard{s: s, next: base}
}

// ProxyFunc is http.Transport's Proxy for cfg: nil without a proxy. As
// everywhere in Go (and dockerd), loopback destinations are never proxied.
func ProxyFunc(cfg httpproxy.Config) func(*http.Request) (*url.URL, error) {
	if cfg.HTTPProxy == "" && cfg.HTTPSProxy == "" {
		return nil
	}
	f := cfg.ProxyFunc()
	return func(r *http.Request) (*url.URL, error) { return f(r.URL) }
}

type httpGuard struct {
	s    *Store
	next http.RoundTripper
}

func (g httpGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !g.s.plainHTTP(r.URL.Host) {
		return nil, fmt.Errorf("refusing plain HTTP to %s (not a loopback or --insecure-registry host)", r.URL.Host)
	}
	return g.next.RoundTrip(r)
}

// registryError gives a registry failure dockerd's wording and an errdefs
// kind. op is "pull" or "push".
func registryError(op string, named reference.Named, err error) error {
	if err == nil {
		return nil
	}
	fam := reference.FamiliarString(named)
	famName := reference.FamiliarName(named)
	var terr *transport.Error
	if errors.As(err, &terr) {
		codes := map[transport.ErrorCode]bool{}
		for _, d := range terr.Errors {
			codes[d.Code] = true
		}
		detail := diagnostics(terr)
		switch {
		case codes[transport.ManifestUnknownErrorCode]:
			return errdefs.NotFound("manifest for %s not found: %s", fam, detail)
		case codes[transport.NameUnknownErrorCode] || codes[transport.DeniedErrorCode] ||
			codes[transport.UnauthorizedErrorCode] || terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			if op == "push" {
				return errdefs.Unauthorized("push access denied for %s: %s", famName, detail)
			}
			return errdefs.NotFound("pull access denied for %s, repository does not exist or may require 'docker login': %s", famName, detail)
		case terr.StatusCode == http.StatusNotFound:
			return errdefs.NotFound("%s %s: %s", op, fam, detail)
		case terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode >= 500:
			return errdefs.Unavailable("%s %s: %s", op, fam, detail)
		}
		return fmt.Errorf("%s %s: %s", op, fam, detail)
	}
	var uerr *url.Error
	var nerr net.Error
	if errors.As(err, &uerr) || errors.As(err, &nerr) {
		return errdefs.Unavailable("%s %s: %v", op, fam, err)
	}
	if errdefs.KindOf(err) != errdefs.KindUnknown {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, fam, err)
}

func diagnostics(e *transport.Error) string {
	var parts []string
	for _, d := range e.Errors {
		msg := strings.ToLower(string(d.Code))
		msg = strings.ReplaceAll(msg, "_", " ")
		if d.Message != "" {
			msg += ": " + d.Message
		}
		parts = append(parts, msg)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return strings.Join(parts, "; ")
}

// Login checks credentials against a registry (the docker login flow) and
// returns the status to show.
func (s *Store) Login(ctx context.Context, ac registry.AuthConfig) (string, error) {
	host := ac.ServerAddress
	if host == "" || strings.Contains(host, "index.docker.io") || host == "docker.io" {
		host = name.DefaultRegistry
		if s.opts.DockerHub != "" {
			host = s.opts.DockerHub
		}
	}
	host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	host, _, _ = strings.Cut(host, "/")
	var opts []name.Option
	if s.plainHTTP(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return "", errdefs.InvalidArgument("invalid registry %q: %v", ac.ServerAddress, err)
	}
	rt, err := transport.NewWithContext(ctx, reg, authenticator(&ac), s.transport(), nil)
	if err != nil {
		return "", loginError(host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return "", loginError(host, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", errdefs.Unauthorized("login attempt to %s://%s/v2/ failed with status: %d %s",
			reg.Scheme(), reg.RegistryStr(), resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return "Login Succeeded", nil
}

func loginError(host string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return errdefs.Unauthorized("login to %s: %s", host, diagnostics(terr))
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return errdefs.Unavailable("login to %s: %v", host, err)
	}
	return fmt.Errorf("login to %s: %w", host, err)
}
