//go:build (desktop || bindings) && !(linux && webkit2_41)

package window

func TuneWebKit() {}
func trimMemory() {}
