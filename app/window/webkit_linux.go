//go:build (desktop || bindings) && linux && webkit2_41

package window

// The window is one small local page: WebKit need not keep a browser's
// caches, and the memory the start-up used and freed goes back to the
// system once the page has painted.

/*
#cgo pkg-config: webkit2gtk-4.1
#include <malloc.h>
#include <webkit2/webkit2.h>

static void berth_document_viewer(void) {
	webkit_web_context_set_cache_model(webkit_web_context_get_default(), WEBKIT_CACHE_MODEL_DOCUMENT_VIEWER);
}
*/
import "C"

import (
	"os"
	"path/filepath"
	"runtime/debug"
)

// TuneWebKit runs before wails.Run (before the web process starts).
func TuneWebKit() {
	// GTK's own GL (GdkGLContext) is never used: the page is painted by
	// WebKit, which sets up its own EGL.
	setDefault("GDK_GL", "disable")
	// Frames come from WebKit's CPU painter (no GPU, see main.go): shared
	// memory carries them to the window without setting up DMA-BUF/GBM.
	setDefault("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
	// WebKit's UI process opens an EGL display only to learn which DRM
	// render node to hand the web process. That loads the GL driver (Mesa
	// and its libLLVM: 50 MB of the window's resident memory) into a process
	// that never draws with GL. Naming the node ourselves skips the probe.
	setDefault("WEBKIT_WEB_RENDER_DEVICE_FILE", renderNode())
	C.berth_document_viewer()
}

// trimMemory returns freed heap pages (C and Go) to the system.
func trimMemory() {
	C.malloc_trim(0)
	debug.FreeOSMemory()
}

// renderNode is the first DRM render node, as WebKit's own fallback picks
// it. With none (no GPU) it names a file that is no DRM device: the web
// process then finds no device and paints with its surfaceless display, as
// it does when the probe finds none.
func renderNode() string {
	if nodes, _ := filepath.Glob("/dev/dri/renderD*"); len(nodes) > 0 {
		return nodes[0]
	}
	return os.DevNull
}

func setDefault(k, v string) {
	if os.Getenv(k) == "" {
		os.Setenv(k, v)
	}
}
