// Package sentinel makes sentinel errors of two packages match each other.
// The durable package and the journal package each name some conditions
// with their own prefix ("durable: engine closed", "journal: store
// closed"); an error from either must match both names with errors.Is.
// Each such sentinel is an *Error of a shared kind: errors.Is(a, b) holds
// for two *Error values of one kind.
package sentinel

// Error is a sentinel error value. Errors of one non-empty kind match each
// other with errors.Is.
type Error struct {
	msg  string
	kind string
}

// New returns a sentinel error with message msg, of kind (two sentinels of
// one kind match each other; "" matches only itself).
func New(msg, kind string) *Error { return &Error{msg: msg, kind: kind} }

func (e *Error) Error() string { return e.msg }

// Is reports whether target is a sentinel of e's kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && e.kind != "" && t.kind == e.kind
}

// The kinds that both packages name.
const (
	Closed  = "closed"
	Invalid = "invalid"
)
