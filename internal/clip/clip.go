// Package clip quotes names and ids for error messages, cut to a length a
// reader can take in: an id or a name may be up to a megabyte long when it
// comes from a caller, and an error must not repeat it in full.
package clip

import (
	"strconv"
	"unicode/utf8"
)

// Max is how many bytes of a string Q keeps.
const Max = 64

// Q returns s quoted as %q would, cut after Max bytes (at a rune boundary)
// with its full length said: "abc…" (1048576 bytes).
func Q(s string) string {
	if len(s) <= Max {
		return strconv.Quote(s)
	}
	n := Max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}
