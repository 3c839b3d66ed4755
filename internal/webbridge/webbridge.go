// Package webbridge serves the desktop frontend to an ordinary browser
// with the real services behind it, bound the way the Wails window binds
// them: each exported method of a bound object is callable from the page as
// window.go.PKG.TYPE.METHOD(...) (a promise that rejects with the error's
// text), and events reach window.runtime.EventsOn. It exists for the
// browser-driven end-to-end test and the screenshots; it listens on
// loopback only and every call must carry the page's random token.
package webbridge

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"reflect"
	"strings"
	"sync"
)

// Bridge is an http.Handler serving the page, /bridge/call and /bridge/events.
type Bridge struct {
	assets  fs.FS
	token   string
	methods map[string]reflect.Value // "desktop.Containers.List"

	mu     sync.Mutex
	subs   map[chan []byte]struct{}
	opened []string // URLs the page asked to open
	folder string   // what PickFolder answers
}

// New serves assets (the built frontend) with objs bound under their Go
// package and type names.
func New(assets fs.FS, objs ...any) *Bridge {
	var tok [16]byte
	rand.Read(tok[:])
	b := &Bridge{assets: assets, token: hex.EncodeToString(tok[:]), methods: map[string]reflect.Value{}, subs: map[chan []byte]struct{}{}}
	for _, o := range objs {
		b.Bind(o)
	}
	return b
}

// Bind adds obj's exported methods under PKG.TYPE, as Wails names them.
func (b *Bridge) Bind(obj any) {
	v := reflect.ValueOf(obj)
	t := v.Type().Elem()
	pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
	for i := 0; i < v.NumMethod(); i++ {
		b.methods[pkg+"."+t.Name()+"."+v.Type().Method(i).Name] = v.Method(i)
	}
}

// Token is the secret the page URL carries (?token=…).
func (b *Bridge) Token() string { return b.token }

// Emit implements desktop.Emitter: the event goes to every open page.
func (b *Bridge) Emit(name string, data any) {
	msg, err := json.Marshal(struct {
		Name string `json:"name"`
		Data any    `json:"data"`
	}{name, data})
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- msg:
		default: // a page that stopped reading is cut off, not waited for
			close(ch)
			delete(b.subs, ch)
		}
	}
}

// OpenURL implements desktop.UI: it records the URL (a test reads Opened).
func (b *Bridge) OpenURL(u string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opened = append(b.opened, u)
	return nil
}

// Opened returns the URLs the page opened.
func (b *Bridge) Opened() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.opened...)
}

// SetFolder sets what the folder dialog answers.
func (b *Bridge) SetFolder(dir string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.folder = dir
}

// PickFolder implements desktop.UI.
func (b *Bridge) PickFolder(string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.folder, nil
}

func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/bridge/call":
		if r.Header.Get("X-Bridge-Token") != b.token || r.Method != http.MethodPost {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		b.call(w, r)
	case "/bridge/events":
		if r.URL.Query().Get("token") != b.token {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		b.events(w, r)
	case "/", "/index.html":
		if r.URL.Query().Get("token") != b.token {
			http.Error(w, "forbidden: open the URL with its token", http.StatusForbidden)
			return
		}
		page, err := fs.ReadFile(b.assets, "index.html")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		inject := fmt.Sprintf("<head><script>window.__bridgeToken=%q</script><script>%s</script>", b.token, bridgeJS)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(strings.Replace(string(page), "<head>", inject, 1)))
	default:
		http.FileServerFS(b.assets).ServeHTTP(w, r)
	}
}

func (b *Bridge) call(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string            `json:"name"`
		Args []json.RawMessage `json:"args"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad call: "+err.Error(), http.StatusBadRequest)
		return
	}
	m, ok := b.methods[req.Name]
	if !ok {
		http.Error(w, "no bound method "+req.Name, http.StatusNotFound)
		return
	}
	mt := m.Type()
	if len(req.Args) != mt.NumIn() {
		http.Error(w, fmt.Sprintf("%s takes %d arguments, got %d", req.Name, mt.NumIn(), len(req.Args)), http.StatusBadRequest)
		return
	}
	in := make([]reflect.Value, mt.NumIn())
	for i := range in {
		p := reflect.New(mt.In(i))
		if err := json.Unmarshal(req.Args[i], p.Interface()); err != nil {
			http.Error(w, fmt.Sprintf("%s argument %d: %v", req.Name, i+1, err), http.StatusBadRequest)
			return
		}
		in[i] = p.Elem()
	}
	out := m.Call(in)
	var result any
	for _, v := range out {
		if v.Type() == reflect.TypeFor[error]() {
			if !v.IsNil() {
				w.WriteHeader(http.StatusInternalServerError)
				json.NewEncoder(w).Encode(map[string]string{"error": v.Interface().(error).Error()})
				return
			}
			continue
		}
		result = v.Interface()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"result": result})
}

func (b *Bridge) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no streaming", http.StatusInternalServerError)
		return
	}
	ch := make(chan []byte, 4096)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
		}
		b.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fmt.Fprint(w, ": ok\n\n")
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			fmt.Fprintf(w, "data: %s\n\n", msg)
			fl.Flush()
		}
	}
}

// bridgeJS stands in for the scripts Wails injects: window.go (bound
// methods) and the part of window.runtime the frontend uses.
const bridgeJS = `
(() => {
  const token = window.__bridgeToken;
  const call = async (name, args) => {
    const r = await fetch('/bridge/call', {method: 'POST', headers: {'X-Bridge-Token': token, 'Content-Type': 'application/json'},
      body: JSON.stringify({name, args: args.map(a => a === undefined ? null : a)})});
    const text = await r.text();
    let body; try { body = JSON.parse(text); } catch { throw text; }
    if (!r.ok) throw (body && body.error) || text;
    return body.result;
  };
  const proxy = (path) => new Proxy(() => {}, {
    get: (_, k) => proxy(path.concat(String(k))),
    apply: (_, __, args) => call(path.join('.'), args),
  });
  window.go = new Proxy({}, {get: (_, pkg) => proxy([String(pkg)])});
  const listeners = {};
  const es = new EventSource('/bridge/events?token=' + token);
  es.onmessage = (e) => {
    const m = JSON.parse(e.data);
    for (const l of (listeners[m.name] || []).slice()) {
      l.cb(m.data);
      if (l.max > 0 && --l.max === 0) listeners[m.name] = listeners[m.name].filter(x => x !== l);
    }
  };
  const noop = () => {};
  window.runtime = {
    EventsOnMultiple(name, cb, max) {
      const l = {cb, max};
      (listeners[name] = listeners[name] || []).push(l);
      return () => { listeners[name] = (listeners[name] || []).filter(x => x !== l); };
    },
    EventsOff(...names) { for (const n of names) delete listeners[n]; },
    EventsOffAll() { for (const n in listeners) delete listeners[n]; },
    EventsEmit: noop, LogPrint: noop, LogTrace: noop, LogDebug: noop, LogInfo: noop, LogWarning: noop, LogError: noop, LogFatal: noop,
    BrowserOpenURL: noop,
    WindowSetTitle: noop, WindowShow: noop, WindowHide: noop,
  };
})();
`
