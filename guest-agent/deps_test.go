//go:build linux

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The engine binary is every container's init (libcontainer re-executes
// it), so each package it links runs its initialisers at every `docker
// run`. BuildKit lives in berth-buildkitd; the engine keeps only the
// classic builder's Dockerfile parser.
func TestEngineLinksNoBuildKitRuntime(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	allowed := []string{
		"github.com/moby/buildkit/frontend/dockerfile/",
		"github.com/moby/buildkit/util/stack",
		"github.com/moby/buildkit/util/suggest",
	}
	forbidden := []string{"github.com/moby/buildkit/", "google.golang.org/grpc", "github.com/containerd/containerd",
		"go.opentelemetry.io/otel/sdk", "github.com/moby/buildkit/client"}
	for _, pkg := range strings.Fields(string(out)) {
		ok := true
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				ok = false
			}
		}
		for _, a := range allowed {
			if strings.HasPrefix(pkg, a) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("berth-agent links %s", pkg)
		}
	}
}
