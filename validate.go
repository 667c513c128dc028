package durable

import (
	"strings"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// Names and ids the journal cannot hold are refused where they enter,
// before a step runs or anything is written: a step name the journal
// refused only at its commit would run the step, park the run, and run it
// again on every resume. Each check is pure (it depends on the name
// alone), so refusing takes no journal position and replay refuses the
// same call again. The errors match ErrInvalid and quote the name cut
// (clip.Q).

// checkStepName checks a step's name (Step, Go).
func checkStepName(name string) error {
	if len(name) > journal.MaxNameLen {
		return invalidf("durable: step name %s is longer than %d bytes (journal.MaxNameLen)", clip.Q(name), journal.MaxNameLen)
	}
	return nil
}

// checkChannel checks a channel name (Send, Receive, OnReceive).
func checkChannel(ch string) error {
	if len(ch) > journal.MaxChannelLen || strings.IndexByte(ch, 0) >= 0 {
		return invalidf("durable: channel %s is longer than %d bytes (journal.MaxChannelLen) or has a NUL byte", clip.Q(ch), journal.MaxChannelLen)
	}
	return nil
}

// checkRunID checks a run id given by a caller; "" passes (Start and
// StartChild make an id for it, the others find no run).
func checkRunID(id string) error {
	if len(id) > journal.MaxIDLen || strings.IndexByte(id, 0) >= 0 {
		return invalidf("durable: run id %s is longer than %d bytes (journal.MaxIDLen) or has a NUL byte", clip.Q(id), journal.MaxIDLen)
	}
	return nil
}
