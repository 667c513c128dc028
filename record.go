package durable

import (
	"fmt"
	"strconv"
)

// What the engine writes in a journal.Record's Kind and Flags. These
// values are the on-disk format: never renumber them.

// Record kinds: the durable operation that owns a position. Every record
// at a position carries the operation's kind and name, so replay can check
// that the code asks for what the journal holds.
const (
	kindStep    uint8 = 1
	kindSleep   uint8 = 2
	kindReceive uint8 = 3
	kindChild   uint8 = 4
	kindNow     uint8 = 5
	kindSelect  uint8 = 6
	kindTimer   uint8 = 7
	kindAll     uint8 = 8 // AwaitAll

	// kindVersion is the record kind of a Version call's answer. Its Data
	// is the version, a msgpack integer. Older engines, which do not know
	// the kind, park a run that holds one (their code has no Version call
	// there), which is what they should do; journals written before it
	// existed hold none and replay unchanged.
	kindVersion uint8 = 9
)

// kinds names each record kind, for people: name is History's Event.Kind;
// what (followed by the quoted record name if named) is how errors such
// as a NondeterminismError describe the operation.
var kinds = [...]struct {
	name  string
	what  string
	named bool
}{
	kindStep:    {"step", "step", true},
	kindSleep:   {"sleep", "sleep", false},
	kindReceive: {"receive", "receive on", true},
	kindChild:   {"child", "child workflow", true},
	kindNow:     {"now", "now", false},
	kindSelect:  {"select", "select", false},
	kindTimer:   {"timer", "timer", false},
	kindAll:     {"all", "await all", false},
	kindVersion: {"version", "version of change", true},
	kindEvent:   {"event", "set event", true},
	kindSend:    {"send", "send to", true},
	kindCancel:  {"cancel", "cancel of", true},
}

// Record flags.
const (
	flagDone    uint8 = 1 << 0 // the operation's outcome
	flagError   uint8 = 1 << 1 // Data is an encoded error
	flagCancel  uint8 = 1 << 2 // on an outcome: cancellation was delivered to the workflow here
	flagAttempt uint8 = 1 << 3 // a failed attempt; Time is when the next one may start
	flagStarted uint8 = 1 << 4 // an at-most-once attempt began
	// flagDeadline, with flagCancel: what was delivered was the run's
	// deadline (ErrDeadlineExceeded), not a cancel request.
	flagDeadline uint8 = 1 << 5

	// flagDetached, on a child's start record (kindChild, Seq 0, never an
	// outcome): the child was started [Detached] and ignores the parent's
	// cancellation. It is flagCancel's bit, which only outcomes carry.
	flagDetached = flagCancel
)

// kindName is the name of kind for people (History's Event.Kind).
func kindName(kind uint8) string {
	if int(kind) < len(kinds) && kinds[kind].name != "" {
		return kinds[kind].name
	}
	return "kind" + strconv.Itoa(int(kind))
}

// describe names an operation of kind and name for errors: `step "charge"`,
// `sleep`.
func describe(kind uint8, name string) string {
	if int(kind) >= len(kinds) || kinds[kind].name == "" {
		return fmt.Sprintf("operation %d %q", kind, name)
	}
	k := kinds[kind]
	if k.named {
		return k.what + " " + strconv.Quote(name)
	}
	return k.what
}
