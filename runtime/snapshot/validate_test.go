package snapshot

import (
	"strings"
	"testing"
)

// Digests and keys name directories under the store: anything but the
// exact forms is refused.
func TestCheckDigestAndKey(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	for d, ok := range map[string]bool{
		"sha256:" + hex64:                  true,
		"sha256:" + hex64[:63]:             false,
		"sha256:" + hex64 + "0":            false,
		"sha256:" + strings.ToUpper(hex64): false,
		"sha256:" + hex64[:63] + "/":       false,
		"sha256:" + hex64 + "\n":           false,
		"sha512:" + hex64 + hex64:          false,
		hex64:                              false,
		"":                                 false,
		"sha256:../../" + hex64[:58]:       false,
	} {
		if err := checkDigest("layer", d); (err == nil) != ok {
			t.Errorf("checkDigest(%q) = %v, want ok=%v", d, err, ok)
		}
	}
	for k, ok := range map[string]bool{
		"c1":                     true,
		"abc_DEF.1-2":            true,
		strings.Repeat("a", 128): true,
		strings.Repeat("a", 129): false,
		"":                       false,
		".hidden":                false,
		"-flag":                  false,
		"a/b":                    false,
		"..":                     false,
		"a\n":                    false,
	} {
		if err := checkKey(k); (err == nil) != ok {
			t.Errorf("checkKey(%q) = %v, want ok=%v", k, err, ok)
		}
	}
}
