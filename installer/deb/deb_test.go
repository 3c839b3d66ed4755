package deb

import "testing"

func TestDebianVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":               "1.2.3",
		"v1.2.3-4-gabc1234":    "1.2.3+4.gabc1234",
		"1.0.0-rc1":            "1.0.0-rc1",
		"90e77e7":              "0~g90e77e7",
		"90e77e7-dirty":        "0~g90e77e7+dirty",
		"v2.0.0-1-g1a2b-dirty": "2.0.0+1.g1a2b+dirty",
		"dev":                  "0~gdev",
	} {
		if got := DebianVersion(in); got != want {
			t.Errorf("DebianVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
