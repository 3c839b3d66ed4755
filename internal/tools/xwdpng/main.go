package main

import (
	"image/png"
	"os"

	"github.com/berth-dev/berth/internal/xwd"
)

func main() {
	f, _ := os.Open(os.Args[1])
	img, err := xwd.Decode(f)
	if err != nil {
		panic(err)
	}
	out, _ := os.Create(os.Args[2])
	png.Encode(out, img)
	out.Close()
}
