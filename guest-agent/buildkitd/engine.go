//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/runtime/buildkit"
	"github.com/berth-dev/berth/runtime/buildkit/link"
)

// engineClient calls the engine's private API for its builder (served by
// guest-agent/builder on a socket only root can reach).
type engineClient struct {
	hc *http.Client
}

func newEngineClient(sock string) *engineClient {
	return &engineClient{hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
}

func (c *engineClient) Image(ctx context.Context, ref string) (*link.SharedImage, error) {
	var si link.SharedImage
	err := c.call(ctx, http.MethodGet, link.PathImage+url.PathEscape(ref), nil, &si)
	if nf, ok := err.(*notFound); ok {
		return nil, &buildkit.NotFoundError{Ref: ref + ": " + nf.msg}
	}
	return &si, err
}

func (c *engineClient) Import(ctx context.Context, req link.ImportRequest) (link.ImportResponse, error) {
	var resp link.ImportResponse
	err := c.call(ctx, http.MethodPost, link.PathImport, req, &resp)
	return resp, err
}

func (c *engineClient) JoinNetwork(ctx context.Context, id string, req link.SandboxRequest) (link.Sandbox, error) {
	var sb link.Sandbox
	err := c.call(ctx, http.MethodPost, link.PathSandboxes+url.PathEscape(id), req, &sb)
	return sb, err
}

func (c *engineClient) LeaveNetwork(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, link.PathSandboxes+url.PathEscape(id), nil, nil)
}

type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

func (c *engineClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://engine"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e link.Error
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		if e.NotFound || resp.StatusCode == http.StatusNotFound {
			return &notFound{msg: e.Message}
		}
		if e.Message == "" {
			e.Message = resp.Status
		}
		return fmt.Errorf("engine: %s", e.Message)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
