package main

import (
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/internal/testkit"
)

// The pull scenario: an image of 64 MiB of random (incompressible) data in
// four layers, pushed once to the shared registry; each sample removes the
// image, so the pull is cold (every layer downloaded, verified, unpacked).
const (
	pullLayers     = 4
	pullLayerBytes = 16 << 20
)

var (
	pullOnce sync.Once
	pullRef  string
)

func pullFixture(b *Bench) string {
	pullOnce.Do(func() {
		var layers [][]byte
		for i := range pullLayers {
			data := make([]byte, pullLayerBytes)
			rand.Read(data)
			layers = append(layers, testkit.LayerTar([]testkit.TarEntry{{Name: fmt.Sprintf("data/%d.bin", i), Body: data}}))
		}
		pullRef = b.Registry + "/bench/pull64:latest"
		testkit.Push(b.T, pullRef, testkit.ImageFromLayers(b.T, v1.Config{Cmd: []string{"true"}}, layers...))
	})
	return pullRef
}

func init() {
	register(Scenario{
		Section: "Engine", Name: "cold pull of a 64 MiB image from a local registry", Unit: "ms", Target: "≤ dockerd",
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			ref := pullFixture(b)
			var out []float64
			for range b.N {
				e.Docker.Run(nil, "rmi", "-f", ref) // absent the first time
				samples, err := e.Time(1, "pull", "-q", ref)
				if err != nil {
					return nil, err
				}
				out = append(out, samples...)
			}
			e.Docker.Run(nil, "rmi", "-f", ref)
			time.Sleep(100 * time.Millisecond)
			return out, nil
		},
	})
}
