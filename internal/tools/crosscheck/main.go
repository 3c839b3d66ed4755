// Command crosscheck type-checks packages for a platform whose cgo cannot
// be compiled here (see internal/crosscheck). make cross runs it for macOS.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/crosscheck"
)

func main() {
	goos := flag.String("goos", "darwin", "target GOOS")
	goarch := flag.String("goarch", "arm64", "target GOARCH (comma-separated for several)")
	tags := flag.String("tags", "", "build tags, comma-separated")
	verbose := flag.Bool("v", false, "also list the ignored errors in dependencies")
	tests := flag.Bool("test", false, "check the packages' test files too")
	flag.Parse()
	failed := false
	for _, arch := range strings.Split(*goarch, ",") {
		t0 := time.Now()
		res, err := crosscheck.Check(context.Background(), crosscheck.Options{
			GOOS: *goos, GOARCH: arch, Tags: splitTags(*tags), Patterns: flag.Args(), Tests: *tests,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "crosscheck:", err)
			os.Exit(2)
		}
		for _, e := range res.Errors {
			fmt.Fprintln(os.Stderr, e)
		}
		for _, e := range res.Ignored {
			if *verbose {
				fmt.Fprintf(os.Stderr, "ignored (%s): %s\n", e.Why, e)
			}
		}
		fmt.Printf("crosscheck %s/%s: %d packages type-checked from source, %d errors, %d ignored in dependencies (%v)\n",
			*goos, arch, res.FromSource, len(res.Errors), len(res.Ignored), time.Since(t0).Round(time.Millisecond))
		failed = failed || len(res.Errors) > 0
	}
	if failed {
		os.Exit(1)
	}
}

func splitTags(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
