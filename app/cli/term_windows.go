//go:build windows

package cli

import (
	"context"
	"os"
	"os/signal"

	"golang.org/x/term"
)

// watchResize reports the console size once; Windows has no SIGWINCH.
func watchResize(ctx context.Context, resize func(h, w uint)) (stop func()) {
	if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
		resize(uint(h), uint(w))
	}
	return func() {}
}

// proxySignals forwards Ctrl-C to the container as SIGINT.
func proxySignals(ctx context.Context, send func(sig string)) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				send("SIGINT")
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
