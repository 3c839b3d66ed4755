package image

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime/snapshot"
)

func TestIDForms(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdef", 4)
	for _, c := range []struct {
		ref          string
		digest, full bool
		short        bool
	}{
		{"sha256:" + hex64, true, true, false},
		{hex64, false, true, false},
		{"sha256:" + hex64[:12], false, false, true},
		{hex64[:1], false, false, true},
		{"sha256:" + strings.ToUpper(hex64), false, false, false},
		{"sha256:" + hex64 + "0", false, false, false},
		{"busybox", false, false, false},
		{"", false, false, false},
	} {
		if got := snapshot.ValidDigest(c.ref); got != c.digest {
			t.Errorf("ValidDigest(%q) = %v", c.ref, got)
		}
		if got := fullIDRE().MatchString(c.ref); got != c.full {
			t.Errorf("full ID %q: %v", c.ref, got)
		}
		if got := shortIDRE().MatchString(c.ref); got != c.short {
			t.Errorf("short ID %q: %v", c.ref, got)
		}
	}
}
