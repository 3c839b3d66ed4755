// Package xwd decodes X Window Dump images, the format Xvfb keeps its
// screen in with -fbdir, so tests can screenshot a real window under Xvfb
// without extra tools.
package xwd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math/bits"
)

// Decode reads a ZPixmap XWD image of 24 or 32 bits per pixel.
func Decode(r io.Reader) (image.Image, error) {
	var h [25]uint32
	if err := binary.Read(r, binary.BigEndian, &h); err != nil {
		return nil, fmt.Errorf("xwd header: %w", err)
	}
	headerSize, version, format := h[0], h[1], h[2]
	width, height, byteOrder := int(h[4]), int(h[5]), h[7]
	bpp, bpl := int(h[11]), int(h[12])
	rmask, gmask, bmask := h[14], h[15], h[16]
	ncolors := h[19]
	if version != 7 || format != 2 {
		return nil, fmt.Errorf("xwd: version %d format %d: want a version 7 ZPixmap", version, format)
	}
	if bpp != 24 && bpp != 32 {
		return nil, fmt.Errorf("xwd: %d bits per pixel not supported", bpp)
	}
	if width <= 0 || height <= 0 || width > 1<<14 || height > 1<<14 || bpl < width*bpp/8 || headerSize < 100 {
		return nil, errors.New("xwd: bad dimensions")
	}
	// Skip the window name and the colour map.
	if _, err := io.CopyN(io.Discard, r, int64(headerSize-100)+int64(ncolors)*12); err != nil {
		return nil, fmt.Errorf("xwd: %w", err)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	row := make([]byte, bpl)
	shift := func(m uint32) int { return bits.TrailingZeros32(m) }
	for y := 0; y < height; y++ {
		if _, err := io.ReadFull(r, row); err != nil {
			return nil, fmt.Errorf("xwd: row %d: %w", y, err)
		}
		for x := 0; x < width; x++ {
			p := row[x*bpp/8:]
			var v uint32
			if byteOrder == 0 { // LSBFirst
				v = uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16
				if bpp == 32 {
					v |= uint32(p[3]) << 24
				}
			} else {
				v = uint32(p[0])<<16 | uint32(p[1])<<8 | uint32(p[2])
				if bpp == 32 {
					v = v<<8 | uint32(p[3])
				}
			}
			img.SetRGBA(x, y, color.RGBA{uint8((v & rmask) >> shift(rmask)), uint8((v & gmask) >> shift(gmask)), uint8((v & bmask) >> shift(bmask)), 0xff})
		}
	}
	return img, nil
}
