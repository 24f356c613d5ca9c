// Package berth holds the domain of the berth platform-as-a-service: the
// objects a team works with (apps, deployments, releases, domains, env vars,
// tokens), their validation rules and the deployment state machine, the value
// types the deploy engine exchanges with its adapters, and the one error type
// every layer uses. It depends on the standard library only.
package berth

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that every layer can react to it the same way
// (the API maps it to an HTTP status once, the CLI to an exit message).
type Kind string

// The error kinds.
const (
	Invalid      Kind = "invalid"      // the caller sent something unacceptable
	NotFound     Kind = "not_found"    // no such object (or not visible to the caller)
	Conflict     Kind = "conflict"     // the object exists or is in the wrong state
	Unauthorized Kind = "unauthorized" // no or bad credentials
	Forbidden    Kind = "forbidden"    // credentials lack the permission
	Unavailable  Kind = "unavailable"  // a dependency (Docker, proxy, store) is down; retry later
	TooMany      Kind = "too_many"     // the caller tried too often (failed sign-ins); retry later
	Internal     Kind = "internal"     // a bug or an unexpected failure
)

// Error is berth's error. Op names the operation ("create app"), Kind its
// class, Msg a message safe to show to a client, Err the wrapped cause, which
// may hold internal details and is never shown to clients.
type Error struct {
	Op   string
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Msg != "" && e.Err != nil:
		return e.Op + ": " + e.Msg + ": " + e.Err.Error()
	case e.Msg != "":
		return e.Op + ": " + e.Msg
	case e.Err != nil:
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + ": " + string(e.Kind)
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error with a client-safe message.
func E(op string, kind Kind, format string, args ...any) *Error {
	return &Error{Op: op, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap wraps err as an *Error of the given kind. It returns nil for a nil err.
func Wrap(op string, kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Kind: kind, Err: err}
}

// ErrorKind returns the kind of the outermost *Error in err's chain, or
// Internal when there is none.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		if e.Kind == "" && e.Err != nil {
			return ErrorKind(e.Err)
		}
		return e.Kind
	}
	return Internal
}

// ErrorMessage returns the client-safe message of err: the Msg of the
// outermost *Error that has one, or a generic text for the kind.
func ErrorMessage(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			break
		}
		if e.Msg != "" {
			return e.Msg
		}
		err = e.Err
	}
	switch ErrorKind(err) {
	case NotFound:
		return "not found"
	case Unauthorized:
		return "authentication required"
	case Forbidden:
		return "permission denied"
	case Unavailable:
		return "a dependency is unavailable; try again"
	}
	return "internal error"
}

// IsKind reports whether err is of kind k.
func IsKind(err error, k Kind) bool { return err != nil && ErrorKind(err) == k }
