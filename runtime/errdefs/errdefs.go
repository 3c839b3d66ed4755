// Package errdefs names the kinds of failure the runtime reports. The Engine
// API maps each kind to an HTTP status in one place (guest-agent/engineapi);
// nothing below that layer knows about HTTP.
package errdefs

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies an error for callers that must react to it (the API edge,
// the CLI, the desktop app).
type Kind int

const (
	KindUnknown Kind = iota
	KindNotFound
	KindConflict
	KindInvalidArgument
	KindUnauthorized
	KindForbidden
	KindUnavailable
	KindNotImplemented
	KindNotModified
	KindCanceled
	KindDeadline
)

type kinded struct {
	kind Kind
	err  error
}

func (e *kinded) Error() string { return e.err.Error() }
func (e *kinded) Unwrap() error { return e.err }

func wrap(k Kind, format string, args ...any) error {
	return &kinded{kind: k, err: fmt.Errorf(format, args...)}
}

// NotFound: the named object does not exist ("No such image: busybox:latest").
func NotFound(format string, args ...any) error { return wrap(KindNotFound, format, args...) }

// Conflict: the request clashes with current state (name in use, image in use).
func Conflict(format string, args ...any) error { return wrap(KindConflict, format, args...) }

// InvalidArgument: the request itself is malformed or out of range.
func InvalidArgument(format string, args ...any) error {
	return wrap(KindInvalidArgument, format, args...)
}

// Unauthorized: credentials are missing or rejected (registry auth).
func Unauthorized(format string, args ...any) error { return wrap(KindUnauthorized, format, args...) }

// Forbidden: the operation is not allowed in this state.
func Forbidden(format string, args ...any) error { return wrap(KindForbidden, format, args...) }

// Unavailable: a dependency (registry, VM) cannot be reached right now.
func Unavailable(format string, args ...any) error { return wrap(KindUnavailable, format, args...) }

// NotImplemented: the engine does not support this yet.
func NotImplemented(format string, args ...any) error {
	return wrap(KindNotImplemented, format, args...)
}

// NotModified: nothing to do (starting a running container, stopping a stopped one).
func NotModified(format string, args ...any) error { return wrap(KindNotModified, format, args...) }

// As re-labels err with kind k while keeping its message and chain.
func As(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kinded{kind: k, err: err}
}

// KindOf returns the outermost kind found in err's chain; context
// cancellation and deadlines are recognised without being labelled.
func KindOf(err error) Kind {
	var k *kinded
	if errors.As(err, &k) {
		return k.kind
	}
	switch {
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return KindDeadline
	}
	return KindUnknown
}

func IsNotFound(err error) bool        { return KindOf(err) == KindNotFound }
func IsConflict(err error) bool        { return KindOf(err) == KindConflict }
func IsInvalidArgument(err error) bool { return KindOf(err) == KindInvalidArgument }
func IsNotModified(err error) bool     { return KindOf(err) == KindNotModified }
func IsUnauthorized(err error) bool    { return KindOf(err) == KindUnauthorized }
