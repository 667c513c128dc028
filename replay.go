package durable

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// op is one durable operation's claim on the journal: its position and
// whatever the journal already holds for it.
type op struct {
	pos  uint32
	recs []journal.Record // recorded at pos before this incarnation, in Seq order
	n    uint32           // records at pos so far: recorded, then written
	full bool             // pos is past Config.MaxHistory: nothing may be recorded
}

// tooLong is the error of an operation past Config.MaxHistory.
func (x *executor) tooLong() error {
	return errorf("durable: run %s made %d durable operations, the limit (Config.MaxHistory); continue as new (see ContinueAsNew): %w", clip.Q(x.id), x.e.cfg.MaxHistory, ErrTooManyRecords)
}

// done returns the outcome record, if the operation completed.
func (o *op) done() (journal.Record, bool) {
	if n := len(o.recs); n > 0 && o.recs[n-1].Flags&flagDone != 0 {
		return o.recs[n-1], true
	}
	return journal.Record{}, false
}

// record returns a record of this operation with the next Seq.
func (o *op) record(kind uint8, name string, flags uint8) journal.Record {
	r := journal.Record{Pos: o.pos, Seq: o.n, Kind: kind, Name: name, Flags: flags}
	o.n++
	return r
}

// take hands out the next journal position to a durable operation of kind
// and name, called by the workflow goroutine. If the journal holds
// something else at that position the run parks with a
// NondeterminismError; take does not return then.
func (x *executor) take(kind uint8, name string) op {
	if x.aborted() {
		x.exit()
	}
	if len(x.deferred) > 0 && !x.replaying() {
		x.scheduleDeferred() // the replay is over, and the operation that ended it too
	}
	if kind != kindVersion {
		x.skipVersions("")
	}
	o := op{pos: x.next}
	x.next++
	if x.logger != nil { // Logger reads the position from any goroutine
		x.pos.Store(x.next)
	}
	start := x.ri
	for x.ri < len(x.recs) && x.recs[x.ri].Pos == o.pos {
		x.ri++
	}
	o.recs = x.recs[start:x.ri:x.ri]
	o.n = uint32(len(o.recs))
	if x.ri == len(x.recs) && x.recs != nil {
		replayed := len(x.recs) > 0
		x.recs, x.ri = nil, 0 // replay is over: let the journal go
		x.replayOver.Store(true)
		if replayed && x.e.obs != nil {
			x.obsReplayed()
		}
	}
	if len(o.recs) == 0 && x.replay != nil && !x.replaying() {
		x.replayEnd() // past the journal's end: a replay check is done
	}
	if len(o.recs) == 0 && int(o.pos) >= x.e.cfg.MaxHistory {
		o.full = true
		return o
	}
	if int(o.pos) == x.e.cfg.MaxHistory*9/10 && len(o.recs) == 0 {
		x.e.log.Warn("durable: run nears its history limit; continue as new", "run_id", x.id, "workflow", x.run.def.Name(), "positions", o.pos, "limit", x.e.cfg.MaxHistory)
	}
	if _, done := o.done(); !done {
		x.setCurrent(o.pos, kind, name)
	}
	if len(o.recs) > 0 && (o.recs[0].Kind != kind || o.recs[0].Name != name) {
		x.park(&NondeterminismError{
			RunID:    x.id,
			Workflow: x.run.def.Name(),
			Position: int(o.pos),
			Recorded: describe(o.recs[0].Kind, o.recs[0].Name),
			Called:   describe(kind, name),
			Location: callerOutside(),
		})
	}
	return o
}

// begin takes the next position for a durable operation of kind and name
// (see take) and reports whether the operation is settled with nothing to
// execute; rec is then its outcome: recorded (replay, which delivers
// again a cancellation it delivered), or an error (past
// Config.MaxHistory, or the run's cancellation already delivered).
func (x *executor) begin(ctx Context, kind uint8, name string) (o op, rec journal.Record, settled bool) {
	o = x.take(kind, name)
	if o.full {
		return o, errorRecord(x.tooLong()), true
	}
	if done, ok := o.done(); ok {
		x.replayed(done)
		return o, done, true
	}
	if err := ctx.canceled(); err != nil {
		return o, errorRecord(err), true
	}
	return o, journal.Record{}, false
}

// outcomeErr is the error of an operation that returns only an error.
func outcomeErr(r journal.Record) error {
	if r.Flags&flagError != 0 {
		return decodeError(r.Data)
	}
	return nil
}

// replaying reports whether the journal holds operations beyond those
// handed out so far.
func (x *executor) replaying() bool { return x.ri < len(x.recs) }

// callerOutside returns file:line of the innermost caller outside this
// package: the workflow code that made the durable call.
func callerOutside() string {
	var pcs [32]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "github.com/durable-go/durable.") || strings.HasSuffix(f.File, "_test.go") {
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return ""
		}
	}
}
