package deb

import (
	"strings"
	"testing"
)

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

func TestCompletionsAndScripts(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_berth", "zsh": "#compdef berth", "fish": "complete -c berth"} {
		var b strings.Builder
		if err := Completion(shell, &b); err != nil || !strings.Contains(b.String(), want) {
			t.Errorf("%s completion: %v, lacks %q", shell, err, want)
		}
	}
	for _, want := range []string{"update-alternatives --install /usr/bin/docker docker /usr/lib/berth/docker/docker 10",
		"update-alternatives --install /usr/libexec/docker/cli-plugins/docker-compose docker-compose /usr/lib/berth/docker/cli-plugins/docker-compose 10"} {
		if !strings.Contains(PostInst, want) {
			t.Errorf("postinst lacks %q:\n%s", want, PostInst)
		}
	}
	if !strings.Contains(PreRm, "update-alternatives --remove docker-buildx /usr/lib/berth/docker/cli-plugins/docker-buildx") {
		t.Errorf("prerm:\n%s", PreRm)
	}
}
