package flowg

import "errors"

// Errors that callers branch on, shared by the store that returns them and
// the API that turns them into status codes.
var (
	// ErrNotFound is a stream, user, role or token that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is a request that breaks a rule on names, passwords,
	// scopes or settings.
	ErrInvalid = errors.New("invalid")
	// ErrTooLarge is a batch over a limit, or too large to commit atomically.
	ErrTooLarge = errors.New("too large")
	// ErrBadCursor is a cursor that no previous page handed out.
	ErrBadCursor = errors.New("cursor is not one returned by a previous page")
	// ErrBadCredentials is a login with an unknown user or a wrong password.
	ErrBadCredentials = errors.New("unknown user or wrong password")
	// ErrBadToken is a token that is malformed, unknown, revoked or expired.
	ErrBadToken = errors.New("token is invalid, revoked or expired")
	// ErrBuiltin is an attempt to change or delete the built-in admin role.
	ErrBuiltin = errors.New("the built-in admin role cannot be changed or deleted")
	// ErrUnknownRole is a user given a role that does not exist.
	ErrUnknownRole = errors.New("unknown role")
	// ErrClosed is returned once shutdown has begun.
	ErrClosed = errors.New("store is closed")
	// ErrDiskFull is a write refused because the disk has too little free
	// space left; reads still work, and writes resume once space returns.
	ErrDiskFull = errors.New("not enough free disk space")
	// ErrLimit is a question that would read or hold more than a node's
	// limits allow; narrowing it answers.
	ErrLimit = errors.New("over a limit")
	// ErrBusy is a request refused because a bounded queue is full; the
	// client should retry shortly.
	ErrBusy = errors.New("busy; retry shortly")
)
