package xwd

import (
	"bytes"
	"encoding/binary"
	"image/color"
	"testing"
)

// dump writes a w×h 32-bit LSBFirst ZPixmap as Xvfb does, pixel (x,y) = f(x,y).
func dump(w, h int, f func(x, y int) uint32) []byte {
	var b bytes.Buffer
	name := []byte("Xvfb\x00")
	hdr := [25]uint32{100 + uint32(len(name)), 7, 2, 24, uint32(w), uint32(h), 0, 0, 32, 0, 32, 32, uint32(w * 4), 4, 0xff0000, 0xff00, 0xff, 8, 256, 0}
	binary.Write(&b, binary.BigEndian, hdr)
	b.Write(name)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			binary.Write(&b, binary.LittleEndian, f(x, y))
		}
	}
	return b.Bytes()
}

func TestDecode(t *testing.T) {
	img, err := Decode(bytes.NewReader(dump(3, 2, func(x, y int) uint32 { return uint32(x*0x40)<<16 | uint32(y*0x80)<<8 | 0x11 })))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.At(2, 1).(color.RGBA); got != (color.RGBA{0x80, 0x80, 0x11, 0xff}) {
		t.Fatalf("pixel (2,1) = %v", got)
	}
	if img.Bounds().Dx() != 3 || img.Bounds().Dy() != 2 {
		t.Fatalf("bounds %v", img.Bounds())
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("not an xwd file at all"), dump(3, 2, func(int, int) uint32 { return 0 })[:120]} {
		if _, err := Decode(bytes.NewReader(in)); err == nil {
			t.Errorf("decoded %d bytes of garbage", len(in))
		}
	}
}
