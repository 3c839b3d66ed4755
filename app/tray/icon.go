package tray

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"sync"

	"github.com/berth-dev/berth/app/hostagent/hostapi"
)

// stateColor is the icon's dot per machine state.
var stateColor = map[hostapi.State]color.RGBA{
	hostapi.Running:  {0x2e, 0xa0, 0x43, 0xff},
	hostapi.Starting: {0xe0, 0xa1, 0x00, 0xff},
	hostapi.Stopping: {0xe0, 0xa1, 0x00, 0xff},
	hostapi.Stopped:  {0x8a, 0x8f, 0x98, 0xff},
	hostapi.Error:    {0xd1, 0x24, 0x2f, 0xff},
}

var (
	iconMu    sync.Mutex
	iconCache = map[hostapi.State][]byte{}
)

// Icon is the tray icon for a state: a 32×32 PNG ship's wheel-like ring
// with a coloured state dot, drawn once per state.
func Icon(s hostapi.State) []byte {
	iconMu.Lock()
	defer iconMu.Unlock()
	if b, ok := iconCache[s]; ok {
		return b
	}
	c, ok := stateColor[s]
	if !ok {
		c = stateColor[hostapi.Stopped]
	}
	const n = 32
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	ring := color.RGBA{0x1f, 0x6f, 0xeb, 0xff}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			dx, dy := float64(x)-15.5, float64(y)-15.5
			r := math.Hypot(dx, dy)
			switch {
			case r >= 11 && r <= 15:
				img.SetRGBA(x, y, ring)
			case r <= 7:
				img.SetRGBA(x, y, c)
			}
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	iconCache[s] = buf.Bytes()
	return iconCache[s]
}
