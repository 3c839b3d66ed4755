//go:build !linux

package control

import "net/http"

// Shells run only in the Linux guest.
func registerShell(*http.ServeMux, Shells) {}
