// Package compression reads archives whatever their compression, as dockerd
// does for every endpoint that takes one: plain, gzip, bzip2, xz or zstd,
// told apart by their first bytes (a Content-Encoding or media type may
// lie, or be absent).
package compression

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Kind is a compression format.
type Kind string

const (
	None  Kind = ""
	Gzip  Kind = "gzip"
	Bzip2 Kind = "bzip2"
	Xz    Kind = "xz"
	Zstd  Kind = "zstd"
)

// Detect names the compression of a stream from its first bytes.
func Detect(magic []byte) Kind {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(magic, []byte("BZh")):
		return Bzip2
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return Xz
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return None
}

// Decompress returns r's content uncompressed; close releases the decoder.
func Decompress(r io.Reader) (out io.Reader, close func(), err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(6)
	switch k := Detect(magic); k {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case Bzip2:
		return bzip2.NewReader(br), func() {}, nil
	case Xz:
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("xz: %w", err)
		}
		return zr, func() {}, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}
