//go:build linux

package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// Search asks a registry's search API (GET /v1/search, Docker Hub's; the
// distribution registry has none) for term. A term that starts with a
// registry host ("localhost:5000/app") searches that registry for the
// rest; any other searches Docker Hub.
func (s *Store) Search(ctx context.Context, term string, limit int, ac *registry.AuthConfig) ([]registry.SearchResult, error) {
	if limit < 1 || limit > 100 {
		return nil, errdefs.InvalidArgument("limit %d is outside of range [1, 100]", limit)
	}
	host, q := "docker.io", term
	if first, rest, ok := strings.Cut(term, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		host, q = first, rest
	}
	if q == "" {
		return nil, errdefs.InvalidArgument("search term is empty")
	}
	scheme := "https"
	base := host
	if host == "docker.io" {
		base = "index.docker.io"
		if s.opts.DockerHub != "" {
			base = s.opts.DockerHub
		}
	}
	if s.plainHTTP(base) {
		scheme = "http"
	}
	u := scheme + "://" + base + "/v1/search?" + url.Values{"q": {q}, "n": {strconv.Itoa(limit)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if ac != nil && ac.Username != "" {
		req.SetBasicAuth(ac.Username, ac.Password)
	}
	resp, err := (&http.Client{Transport: s.transport()}).Do(req)
	if err != nil {
		return nil, errdefs.Unavailable("search %s: %v", host, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return nil, errdefs.NotImplemented("registry %s has no search API (GET /v1/search answered %s)", host, resp.Status)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, errdefs.Unauthorized("search %s: %s", host, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, errdefs.Unavailable("search %s: %s", host, resp.Status)
	}
	var body registry.SearchResults
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("search %s: invalid answer: %w", host, err)
	}
	if body.Results == nil {
		body.Results = []registry.SearchResult{}
	}
	if len(body.Results) > limit {
		body.Results = body.Results[:limit]
	}
	return body.Results, nil
}

// DistributionInspect describes what a registry serves for ref without
// pulling it: the manifest's (or index's) descriptor and the platforms it
// covers. Docker Hub's images are looked up through the mirrors first, as
// pulls are.
func (s *Store) DistributionInspect(ctx context.Context, ref string, ac *registry.AuthConfig) (registry.DistributionInspect, error) {
	var out registry.DistributionInspect
	named, err := parseNamed(ref)
	if err != nil {
		return out, err
	}
	named = reference.TagNameOnly(named)
	eps, err := s.pullEndpoints(named)
	if err != nil {
		return out, err
	}
	for _, ep := range eps {
		auth := ac
		if ep.mirror != "" {
			auth = nil
		}
		out, err = s.distributionAt(ctx, ep, auth)
		if err == nil {
			return out, nil
		}
		if ep.mirror == "" {
			break
		}
	}
	return out, registryError("inspect", named, err)
}

func (s *Store) distributionAt(ctx context.Context, ep endpoint, ac *registry.AuthConfig) (registry.DistributionInspect, error) {
	var out registry.DistributionInspect
	desc, err := remote.Get(ep.ref, s.remoteOptions(ctx, ac)...)
	if err != nil {
		return out, err
	}
	out.Descriptor = ocispec.Descriptor{MediaType: string(desc.MediaType), Digest: digest.Digest(desc.Digest.String()), Size: desc.Size}
	out.Platforms = []ocispec.Platform{}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return out, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return out, err
		}
		for _, m := range im.Manifests {
			if p := m.Platform; p != nil && p.Architecture != "unknown" {
				out.Platforms = append(out.Platforms, ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion})
			}
		}
		return out, nil
	}
	img, err := desc.Image()
	if err != nil {
		return out, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return out, fmt.Errorf("config: %w", err)
	}
	out.Platforms = append(out.Platforms, ocispec.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion})
	return out, nil
}
