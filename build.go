package durable

import (
	"errors"
	"fmt"
	"strings"

	"github.com/durable-go/durable/journal"
)

// startBuilds is the Builds of a run this engine creates.
func (e *Engine) startBuilds() []string {
	if e.cfg.BuildID == "" {
		return nil
	}
	return []string{e.cfg.BuildID}
}

// resumeUpdate is the update a run needs when this engine loads it: back
// to running if it was parked, and this engine's build added if it is not
// the latest of the run's builds. ok is false if nothing changes.
func (e *Engine) resumeUpdate(row *journal.Run) (u journal.Update, ok bool) {
	u.RunID = row.ID
	if row.Status == journal.StatusParked {
		u.Status, ok = journal.StatusRunning, true
	}
	if b := e.cfg.BuildID; b != "" && (len(row.Builds) == 0 || row.Builds[len(row.Builds)-1] != b) {
		u.Build, ok = b, true
	}
	return u, ok
}

// annotate adds what the engine knows of the run's builds to a
// divergence.
func (x *executor) annotate(reason error) {
	var nd *NondeterminismError
	if !errors.As(reason, &nd) || nd.RunID != x.id {
		return
	}
	nd.RecordedBy, nd.Build = x.row.Builds, x.e.cfg.BuildID
	// The builds before this one: a load by this build lists it last
	// (resumeUpdate), whether or not that load recorded anything, and
	// whether the row was read before or after it (a run can be loaded
	// twice, at Open and for a message); a divergence is found by
	// code of this build against what earlier builds wrote.
	if n := len(nd.RecordedBy); n > 0 && nd.RecordedBy[n-1] == nd.Build {
		nd.RecordedBy = nd.RecordedBy[:n-1]
	}
}

// fixes says which builds recorded the run and how to resume it.
func (e *NondeterminismError) fixes() string {
	var b strings.Builder
	if len(e.RecordedBy) > 0 {
		fmt.Fprintf(&b, "; the journal was recorded by build %s", strings.Join(e.RecordedBy, ", then "))
		if e.Build != "" {
			fmt.Fprintf(&b, " and this engine runs build %s", e.Build)
		}
	}
	b.WriteString("; to resume the run, deploy code that follows its journal (revert the change")
	if n := len(e.RecordedBy); n > 0 {
		if last := e.RecordedBy[n-1]; last != e.Build {
			fmt.Fprintf(&b, ", or run build %s", last)
		}
	}
	fmt.Fprintf(&b, "), put the change behind durable.Version so that runs that passed this point keep the old path, or fork the run at position %d onto the current code (Engine.Fork, durable fork)", e.Position)
	return b.String()
}
