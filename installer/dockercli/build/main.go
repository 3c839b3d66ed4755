// Command build lays out the docker CLI and its buildx and compose plugins
// for one GOOS/GOARCH, as the installers ship them: OUT/docker and
// OUT/cli-plugins/docker-{buildx,compose} (.exe on Windows). Built once per
// machine into the cache (installer/dockercli).
//
//	go run ./installer/dockercli/build -goos darwin -goarch arm64 -out dist/docker
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/berth-dev/berth/installer/dockercli"
)

func main() {
	goos := flag.String("goos", runtime.GOOS, "target OS")
	goarch := flag.String("goarch", runtime.GOARCH, "target architecture")
	out := flag.String("out", "", "directory to lay the tools out in")
	cache := flag.String("cache", dockercli.DefaultCache(), "where built tools are kept")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "build: -out is required")
		os.Exit(2)
	}
	logf := func(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...) }
	if err := dockercli.BuildAll(*cache, *goos, *goarch, *out, logf); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}
