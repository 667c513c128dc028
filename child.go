package durable

import (
	"context"
	"fmt"
	"strconv"

	"github.com/durable-go/durable/journal"
)

// RunChild starts run id of workflow w as a child of this run and waits
// for its result: [StartChild] then [Future.Get].
func RunChild[I, O any](ctx Context, w *Workflow[I, O], id string, in I) (O, error) {
	return StartChild(ctx, w, id, in).Get(ctx)
}

// StartChild starts run id of workflow w as a child of this run and
// returns the future of its result. The child is a run of its own, with
// its own journal, visible in [Engine.Get] and [Engine.List] with this run
// as its Parent. Its creation is journaled in this run at this position,
// in the same commit, so it is started exactly once even if the process
// dies right after; its result is journaled here when it finishes, even
// if this run is not loaded then. An empty id means "<parent id>/<position>".
//
// Canceling this run cancels the child, unless it was started [Detached].
// A failed child's error, as the parent sees it, is a [*ChildError].
// A child id that belongs to a run that is not this run's child at this
// position fails with [ErrWorkflowMismatch].
func StartChild[I, O any](ctx Context, w *Workflow[I, O], id string, in I, opts ...StartOption) *Future[O] {
	x := ctx.executor()
	o := x.take(kindChild, w.Name())
	f := &Future[O]{st: newFutureState()}
	var childID string
	var detached bool
	if len(o.recs) > 0 {
		childID, detached = string(o.recs[0].Data), o.recs[0].Flags&flagCancel != 0
	} else if id != "" {
		childID = id
	} else {
		childID = x.id + "/" + strconv.FormatUint(uint64(o.pos), 10)
	}
	f.decode = func(x *executor, st *futureState) (O, error) {
		r := st.rec
		out, err := decodeOutcome[O](x, r)
		if err != nil && r.Flags&flagDone != 0 && r.Seq > 0 {
			err = &ChildError{Parent: x.s.def.Name(), ParentID: x.id, Workflow: w.Name(), RunID: childID, Err: err}
		}
		return out, err
	}
	if done, ok := o.done(); ok {
		f.st.resolve(done)
		x.trackChild(childID, detached)
		return f
	}
	if len(o.recs) == 0 {
		if err := ctx.canceled(); err != nil || o.full {
			if o.full {
				err = x.tooLong()
			}
			f.st.resolve(errorRecord(err))
			return f
		}
		if cause := x.pendingCancel(ctx); cause != nil {
			f.st.resolve(x.deliverLive(&o, kindChild, w.Name(), cause))
			return f
		}
		var sc startConfig
		for _, opt := range opts {
			opt(&sc)
		}
		detached = sc.detached
		if err := x.e.register(w); err != nil {
			x.stop(abortClose, err)
			x.exit()
		}
		if r, ok := x.createChild(&o, w.Name(), childID, in, &sc); !ok {
			f.st.resolve(r) // refused: recorded as the operation's outcome
			return f
		}
	}
	x.trackChild(childID, detached)
	if _, err := x.e.attach(childID, w); err != nil {
		x.stop(abortClose, err)
		x.exit()
	}
	s := x.s
	f.st.poll = func() {
		if r, ok := s.takeDelivered(o.pos); ok {
			f.st.resolve(r)
		}
	}
	return f
}

// createChild journals the child's start at o and creates the child run,
// in one commit. If the child cannot be created (its input does not
// encode, or its id is taken by another run) it records that failure as
// the operation's outcome and returns it with false.
func (x *executor) createChild(o *op, name, childID string, in any, sc *startConfig) (journal.Record, bool) {
	fail := func(err error) (journal.Record, bool) {
		r := o.record(kindChild, name, flagDone|flagError)
		r.Data = encodeError(err)
		x.write(nil, r)
		return r, false
	}
	input, err := encodePayload(in, x.e.cfg.MaxPayloadBytes)
	if err != nil {
		return fail(payloadErr(err, "input of child run %q", childID))
	}
	old, err := x.e.store.GetRun(context.Background(), childID)
	switch {
	case err == nil && (old.Parent != x.id || old.ParentPos != o.pos || old.Workflow != name):
		return fail(fmt.Errorf("durable: child run %q: the id belongs to another run (workflow %q, parent %q): %w", childID, old.Workflow, old.Parent, ErrWorkflowMismatch))
	case err != nil && !isNotFound(err):
		x.stop(x.commitFailure(err))
		x.exit()
	}
	flags := uint8(0)
	if sc.detached {
		flags = flagCancel // on a start record: the child ignores the parent's cancellation
	}
	r := o.record(kindChild, name, flags)
	r.Data = []byte(childID)
	b := &journal.Batch{
		Append: []journal.Append{{RunID: x.id, Record: r}},
		Create: []journal.Run{{ID: childID, Workflow: name, Status: journal.StatusRunning, Input: input, Parent: x.id, ParentPos: o.pos, Deadline: sc.deadlineFrom(x.now())}},
	}
	crashPoint("child-start", x.id, int(o.pos))
	if !x.commit(b) {
		x.exit()
	}
	crashPoint("child-started", x.id, int(o.pos))
	return r, true
}

// trackChild remembers a child that the run's cancellation must reach,
// and passes on a cancellation already requested.
func (x *executor) trackChild(id string, detached bool) {
	if detached {
		return
	}
	x.mu.Lock()
	if x.children == nil {
		x.children = map[string]bool{}
	}
	x.children[id] = true
	x.mu.Unlock()
	if x.s.cancelRequested() != nil {
		x.cancelChildren()
	}
}

// cancelChildren asks every tracked child to cancel.
func (x *executor) cancelChildren() {
	x.mu.Lock()
	ids := make([]string, 0, len(x.children))
	for id := range x.children {
		ids = append(ids, id)
	}
	x.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	e := x.e
	e.spawn(func() {
		for _, id := range ids {
			if err := e.Cancel(context.Background(), id); err != nil && !isFinished(err) && !isNotFound(err) {
				e.log.Warn("durable: cannot cancel child run", "run", x.id, "child", id, "err", err)
			}
		}
	})
}
