package compression

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func TestDecompressEachKind(t *testing.T) {
	plain := bytes.Repeat([]byte("berth archive content\n"), 500)
	var gz, xzb, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	xw, _ := xz.NewWriter(&xzb)
	xw.Write(plain)
	xw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	// bzip2 has no writer in the standard library: a fixed stream of "hi\n".
	bz := []byte{0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0x1d, 0x5e,
		0x59, 0xd5, 0x00, 0x00, 0x00, 0xc1, 0x00, 0x00, 0x10, 0x00, 0x60, 0x20,
		0x00, 0x21, 0x98, 0x19, 0x84, 0x61, 0x77, 0x24, 0x53, 0x85, 0x09, 0x01,
		0xd5, 0xe5, 0x9d, 0x50}
	for _, c := range []struct {
		name string
		in   []byte
		kind Kind
		want []byte
	}{{"plain", plain, None, plain}, {"gzip", gz.Bytes(), Gzip, plain}, {"xz", xzb.Bytes(), Xz, plain},
		{"zstd", zs.Bytes(), Zstd, plain}, {"bzip2", bz, Bzip2, []byte("hi\n")}} {
		if k := Detect(c.in); k != c.kind {
			t.Errorf("%s: detected %q", c.name, k)
		}
		r, done, err := Decompress(bytes.NewReader(c.in))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := io.ReadAll(r)
		done()
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: %d bytes, %v", c.name, len(got), err)
		}
	}
}
