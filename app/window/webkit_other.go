//go:build (desktop || bindings) && !(linux && webkit2_41)

package main

func tuneWebKit() {}
func trimMemory() {}
