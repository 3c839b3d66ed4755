//go:build !desktop && !bindings

// Without the desktop tag this package builds to a hint, so `go build ./...`
// needs neither cgo nor WebKit. `make desktop` builds the real window.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "berth-desktop: build with `make desktop` (go build -tags desktop,production,webkit2_41)")
	os.Exit(2)
}
