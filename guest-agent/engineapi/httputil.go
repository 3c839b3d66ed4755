package engineapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// maxJSONBody bounds request bodies decoded as JSON; bigger ones are refused
// with 400 rather than read into memory.
const maxJSONBody = 8 << 20

// statusOf is the single place where a runtime error kind becomes an HTTP status.
func statusOf(err error) int {
	switch errdefs.KindOf(err) {
	case errdefs.KindNotFound:
		return http.StatusNotFound
	case errdefs.KindConflict:
		return http.StatusConflict
	case errdefs.KindInvalidArgument:
		return http.StatusBadRequest
	case errdefs.KindUnauthorized:
		return http.StatusUnauthorized
	case errdefs.KindForbidden:
		return http.StatusForbidden
	case errdefs.KindUnavailable:
		return http.StatusServiceUnavailable
	case errdefs.KindNotImplemented:
		return http.StatusNotImplemented
	case errdefs.KindNotModified:
		return http.StatusNotModified
	case errdefs.KindCanceled:
		return 499 // client closed request; nobody reads it
	case errdefs.KindDeadline:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// writeError sends {"message": "..."} with the status for err's kind.
// A 304 carries no body, per HTTP.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{err.Error()})
}

// writeJSON sends v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a JSON request body into v. An empty body leaves v as is;
// malformed or oversized bodies are InvalidArgument (400).
func decodeJSON(r *http.Request, v any) error {
	if err := checkForJSON(r); err != nil {
		return err
	}
	if r.Body == nil {
		return nil
	}
	body := io.LimitReader(r.Body, maxJSONBody+1)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errdefs.InvalidArgument("request body too large (limit %d bytes)", maxJSONBody)
		}
		if n, _ := io.Copy(io.Discard, body); n > 0 || errors.Is(err, io.ErrUnexpectedEOF) {
			return errdefs.InvalidArgument("invalid JSON body (truncated or larger than %d bytes): %v", maxJSONBody, err)
		}
		return errdefs.InvalidArgument("invalid JSON body: %v", err)
	}
	if dec.More() {
		return errdefs.InvalidArgument("invalid JSON body: trailing data after the object")
	}
	return nil
}

// boolValue reads a boolean query parameter the way dockerd does: absent,
// "", "0", "no", "false" and "none" are false; anything else is true.
func boolValue(r *http.Request, name string) bool {
	s := strings.ToLower(strings.TrimSpace(r.URL.Query().Get(name)))
	return !(s == "" || s == "0" || s == "no" || s == "false" || s == "none")
}

// boolValueOr is boolValue with a default for an absent parameter.
func boolValueOr(r *http.Request, name string, def bool) bool {
	if !r.URL.Query().Has(name) {
		return def
	}
	return boolValue(r, name)
}

// intValue reads an integer query parameter; absent gives def, garbage a 400.
func intValue(r *http.Request, name string, def int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errdefs.InvalidArgument("invalid value for %s: %q is not an integer", name, s)
	}
	return n, nil
}

// flushWriter flushes after each write so progress streams reach the client
// as they are produced.
type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

// streamWriter starts a 200 streaming response of content type ct and
// returns a writer that flushes each write.
func streamWriter(w http.ResponseWriter, ct string) io.Writer {
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	if f != nil {
		f.Flush()
	}
	return flushWriter{w: w, f: f}
}

// hijack takes over the connection for attach and exec. Clients that asked
// for "Upgrade: tcp" get 101 UPGRADED, the rest a 200, as dockerd answers;
// the content type names a multiplexed stream only on the first, from API
// 1.42. The returned reader holds any bytes the client sent ahead (stdin)
// and must be read before conn.
func hijack(w http.ResponseWriter, r *http.Request, multiplexed bool) (net.Conn, *bufio.Reader, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	status, contentType := "HTTP/1.1 200 OK\r\n", rawStream
	if _, upgrade := r.Header["Upgrade"]; upgrade {
		status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
		if multiplexed && !apiBefore(r, "1.42") {
			contentType = multiplexedStream
		}
	}
	if _, err := fmt.Fprintf(conn, "%sContent-Type: %s\r\nApi-Version: %s\r\n\r\n", status, contentType, APIVersion); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, rw.Reader, nil
}

// closeHijacked ends a hijacked stream gracefully: our side first (the
// client reads EOF), then whatever the client still sends is drained for a
// moment before the close, so unread input does not turn the close into a
// reset that discards output the client has not read yet.
func closeHijacked(conn net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := conn.(closeWriter); ok && cw.CloseWrite() == nil {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, conn)
	}
	conn.Close()
}
