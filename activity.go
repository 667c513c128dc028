package durable

import (
	"context"
	"time"

	"github.com/durable-go/durable/journal"
)

// Operation is a durable operation a run has begun and not finished: what
// an unfinished run is doing now. [Engine.Get] reports them in
// [RunInfo.Pending].
type Operation struct {
	// Position is the operation's place in the run's journal.
	Position int
	// Kind is "step", "sleep", "receive", "child", "select", "await all",
	// or "start" for a run waiting for its [StartAt] time (Due).
	Kind string
	// Name is the step's name, the channel received on, or the child's
	// workflow.
	Name string
	// Attempt is, for a step, the attempt executing or the next one, from 1.
	Attempt int
	// NextAttempt is, for a step waiting between attempts, when the next
	// attempt starts; zero while an attempt executes.
	NextAttempt time.Time
	// LastError is, for a step that failed an attempt, that attempt's error.
	LastError string
	// Due is when a sleep ends or a receive with a timeout gives up; zero
	// if none.
	Due time.Time
	// Child is, for a child workflow, the child run's id.
	Child string
	// Inbox is, for a receive, how many messages wait on its channel.
	Inbox int
}

// curOp is the workflow goroutine's latest operation not settled by
// replay (executor.cur).
type curOp struct {
	set  bool
	pos  uint32
	kind uint8
	name string
}

// setCurrent records the operation the workflow goroutine begins.
func (x *executor) setCurrent(pos uint32, kind uint8, name string) {
	x.curMu.Lock()
	x.cur = curOp{set: true, pos: pos, kind: kind, name: name}
	x.curMu.Unlock()
}

// current returns run id's curOp if the run is loaded in this engine.
func (e *Engine) current(id string) curOp {
	lr := e.liveRunOf(id)
	if lr == nil {
		return curOp{}
	}
	lr.mu.Lock()
	x := lr.x
	lr.mu.Unlock()
	if x == nil {
		return curOp{}
	}
	x.curMu.Lock()
	defer x.curMu.Unlock()
	return x.cur
}

// stampRecords gives the records of b that carry no time of their own
// the time they are written, so that History can say when each operation
// ended. (A record's Time is otherwise a time the operation waits for: a
// sleep's end, a retry's next attempt, a receive's timeout, a clock
// reading.)
func stampRecords(b *journal.Batch, clock Clock) {
	now := b.Now
	for i := range b.Append {
		if b.Append[i].Time.IsZero() {
			if now.IsZero() {
				now = journalTime(clock.Now())
			}
			b.Append[i].Time = now
		}
	}
}

// pending fills info.Pending and info.Inbox for an unfinished run from
// its journal and, if the run is loaded here, its current operation. A
// journal that cannot be read leaves them empty: Get still reports the
// run.
func (e *Engine) pending(ctx context.Context, info *RunInfo) {
	recs, err := e.store.Records(ctx, info.ID)
	if err != nil {
		return
	}
	ops := pendingOps(recs)
	ops = append(ops, delayedStart(recs, info)...)
	if c := e.current(info.ID); c.set && c.kind != kindNow && c.kind != kindTimer && c.kind != kindCancel {
		found := false
		for _, r := range recs {
			if r.Pos == c.pos {
				found = true
				break
			}
		}
		if !found { // nothing recorded yet: a first attempt, a receive without timeout
			op := Operation{Position: int(c.pos), Kind: kindName(c.kind), Name: c.name}
			if c.kind == kindStep {
				op.Attempt = 1
			}
			ops = append(ops, op)
		}
	}
	if ic, ok := e.store.(journal.InboxCounter); ok {
		if counts, err := ic.InboxCounts(ctx, info.ID); err == nil && len(counts) > 0 {
			info.InboxChannels = counts
		}
	}
	for i := range ops {
		if ops[i].Kind != "receive" {
			continue
		}
		if info.InboxChannels != nil {
			ops[i].Inbox = info.InboxChannels[ops[i].Name]
			continue
		}
		if msgs, err := e.store.Messages(ctx, info.ID, ops[i].Name, 0); err == nil && len(msgs) > 0 {
			ops[i].Inbox = len(msgs)
			if info.InboxChannels == nil {
				info.InboxChannels = map[string]int{}
			}
			info.InboxChannels[ops[i].Name] = len(msgs)
		}
	}
	for _, n := range info.InboxChannels {
		info.Inbox += n
	}
	info.Pending = ops
}

// pendingOps returns the operations of a journal whose outcome is not
// recorded, in position order.
func pendingOps(recs []journal.Record) []Operation {
	var ops []Operation
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].Pos == recs[i].Pos {
			j++
		}
		at := recs[i:j]
		i = j
		if at[len(at)-1].Flags&flagDone != 0 {
			continue
		}
		first := at[0]
		op := Operation{Position: int(first.Pos), Kind: kindName(first.Kind), Name: first.Name}
		switch first.Kind {
		case kindStep:
			op.Attempt = 1
			for _, r := range at {
				switch {
				case r.Flags&flagAttempt != 0:
					op.Attempt++
					op.NextAttempt = r.Time
					if err := decodeError(r.Data); err != nil { // a damaged record may carry none
						op.LastError = err.Error()
					}
				case r.Flags&flagStarted != 0:
					op.NextAttempt = time.Time{} // the attempt began
				}
			}
		case kindSleep, kindReceive:
			op.Due = first.Time
		case kindChild:
			op.Child = string(first.Data)
		}
		ops = append(ops, op)
	}
	return ops
}
