//go:build !windows

package cli

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/term"
)

// watchResize reports the terminal size now and on every SIGWINCH.
func watchResize(ctx context.Context, resize func(h, w uint)) (stop func()) {
	report := func() {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			resize(uint(h), uint(w))
		}
	}
	report()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				report()
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// proxySignals forwards the signals a user can send to a foreground
// container (docker's --sig-proxy), by number.
func proxySignals(ctx context.Context, send func(sig string)) (stop func()) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if n, ok := s.(syscall.Signal); ok {
					send(strconv.Itoa(int(n)))
				}
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
