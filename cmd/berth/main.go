// Command berth is Berth's CLI: it starts and stops the VM and runs
// containers over the Engine API. Pure Go, so it cross-compiles everywhere.
package main

import (
	"os"

	"github.com/berth-dev/berth/app/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
