// Package errtext keeps one package prefix per error message. The durable
// and journal packages start their messages with "durable: " and
// "journal: ", and wrap each other's errors with %w; without care a
// message reads "durable: open j.db: journal: j.db is not a bbolt file:
// journal: not a durable journal". Errorf and OnePrefix keep the first
// prefix and drop the ones that follow a ": " inside the message.
package errtext

import (
	"fmt"
	"strings"
)

var prefixes = [...]string{"durable: ", "journal: "}

// OnePrefix returns msg with every package prefix after its first
// removed. A message that does not start with a prefix is returned as is.
func OnePrefix(msg string) string {
	start := 0
	for _, p := range prefixes {
		if strings.HasPrefix(msg, p) {
			start = len(p)
			break
		}
	}
	if start == 0 {
		return msg
	}
	rest := msg[start:]
	if !strings.Contains(rest, prefixes[0]) && !strings.Contains(rest, prefixes[1]) {
		return msg
	}
	for _, p := range prefixes {
		rest = strings.ReplaceAll(rest, ": "+p, ": ")
		rest = strings.ReplaceAll(rest, "→ "+p, "→ ")
	}
	return msg[:start] + rest
}

// Errorf is fmt.Errorf with the message passed through OnePrefix. The
// error unwraps as fmt.Errorf's does.
func Errorf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	msg := err.Error()
	if m := OnePrefix(msg); m != msg {
		return &wrapped{msg: m, err: err}
	}
	return err
}

// wrapped is an error with a shorter message than the error it wraps.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }

// Unwrap returns what the fmt.Errorf error wraps.
func (w *wrapped) Unwrap() []error {
	switch u := w.err.(type) {
	case interface{ Unwrap() error }:
		return []error{u.Unwrap()}
	case interface{ Unwrap() []error }:
		return u.Unwrap()
	}
	return nil
}
