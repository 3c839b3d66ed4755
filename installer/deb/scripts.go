package deb

import (
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/app/cli"
)

// DockerDir is where the package keeps the docker CLI and its plugins.
const DockerDir = "/usr/lib/berth/docker"

// The docker CLI and plugins as alternatives: update-alternatives never
// replaces a real file at the link's place (docker-ce-cli's or docker.io's
// /usr/bin/docker, docker-compose-plugin's plugin), so a docker the user
// has keeps working as it did; ours fills only what is missing. The
// alternatives go when the package is removed.
var alternatives = [][2]string{
	{"docker", "/usr/bin/docker"},
	{"docker-buildx", "/usr/libexec/docker/cli-plugins/docker-buildx"},
	{"docker-compose", "/usr/libexec/docker/cli-plugins/docker-compose"},
}

func target(name string) string {
	if name == "docker" {
		return DockerDir + "/docker"
	}
	return DockerDir + "/cli-plugins/" + name
}

// PostInst and PreRm are the maintainer scripts.
var PostInst, PreRm = func() (string, string) {
	post := "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n"
	pre := "#!/bin/sh\nset -e\nif [ \"$1\" = remove ] || [ \"$1\" = deconfigure ]; then\n"
	for _, a := range alternatives {
		post += fmt.Sprintf("\tupdate-alternatives --install %s %s %s 10\n", a[1], a[0], target(a[0]))
		pre += fmt.Sprintf("\tupdate-alternatives --remove %s %s\n", a[0], target(a[0]))
	}
	return post + "fi\n", pre + "fi\n"
}()

// completionFiles are where Debian's shells look for a command's
// completions, and the shell each is for.
var completionFiles = map[string]string{
	"/usr/share/bash-completion/completions/berth":    "bash",
	"/usr/share/zsh/vendor-completions/_berth":        "zsh",
	"/usr/share/fish/vendor_completions.d/berth.fish": "fish",
}

// Completion writes `berth completion SHELL`'s script to w.
func Completion(shell string, w io.Writer) error {
	// No environment: the scripts are the same wherever the package is made.
	root := cli.NewRoot(&cli.Env{Stdin: strings.NewReader(""), Stdout: w, Stderr: io.Discard, Getenv: func(string) string { return "" }})
	switch shell {
	case "bash":
		return root.GenBashCompletionV2(w, true)
	case "zsh":
		return root.GenZshCompletion(w)
	case "fish":
		return root.GenFishCompletion(w, true)
	}
	return fmt.Errorf("no completion for shell %q", shell)
}
