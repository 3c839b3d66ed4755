//go:build linux

package engineapi

import "testing"

func TestMaskCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"http://user:secret@proxy:3128": "http://xxxxx:xxxxx@proxy:3128",
		"http://proxy:3128":             "http://proxy:3128",
		"":                              "",
	} {
		if got := maskCredentials(in); got != want {
			t.Errorf("maskCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}
