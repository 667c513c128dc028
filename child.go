package durable

import (
	"context"
	"strconv"

	"github.com/durable-go/durable/internal/clip"
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
// if this run is not loaded then. An empty id means "<parent id>/<position>"
// ("<parent id>/<epoch>.<position>" once the run continued as new, so that
// each epoch starts children of its own).
//
// Canceling this run cancels the child, unless it was started [Detached].
// A failed child's error, as the parent sees it, is a [*ChildError].
// A child id that belongs to a run that is not this run's child at this
// position fails with [ErrWorkflowMismatch].
func StartChild[I, O any](ctx Context, w *Workflow[I, O], id string, in I, opts ...StartOption) *Future[O] {
	x := ctx.executor()
	f := &Future[O]{st: newFutureState(), decode: decodeFuture[O]}
	if err := x.enter(); err != nil {
		f.st.resolve(errorRecord(err))
		return f
	}
	defer x.leave()
	if err := checkRunID(id); err != nil {
		f.st.resolve(errorRecord(err))
		return f
	}
	o := x.take(kindChild, w.Name())
	f.st.kind, f.st.name, f.st.pos, f.st.x = WaitChild, w.Name(), o.pos, x
	ctx.scope().markAsync()
	var childID string
	var detached bool
	if len(o.recs) > 0 {
		childID, detached = string(o.recs[0].Data), o.recs[0].Flags&flagDetached != 0
	} else if id != "" {
		childID = id
	} else {
		childID = x.id + "/" + strconv.FormatUint(uint64(o.pos), 10)
		if x.row.Epoch > 0 {
			childID = x.id + "/" + strconv.FormatUint(uint64(x.row.Epoch), 10) + "." + strconv.FormatUint(uint64(o.pos), 10)
		}
	}
	f.st.child = childID
	if s := ctx.scope(); s != nil {
		x.trackScoped(scopedChild{id: childID, scope: s, st: f.st})
	}
	f.decode = func(x *executor, st *futureState) (O, error) {
		r := st.rec
		out, err := decodeOutcome[O](x, r)
		if err != nil && r.Flags&flagDone != 0 && r.Seq > 0 {
			err = &ChildError{Parent: x.run.def.Name(), ParentID: x.id, Workflow: w.Name(), RunID: childID, Err: err}
		}
		return out, err
	}
	if done, ok := o.done(); ok {
		f.st.resolve(done)
		x.trackChild(childID, detached)
		return f
	}
	if len(o.recs) == 0 {
		if x.replay != nil {
			x.replayEnd() // a replay check starts no child
		}
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
			f.st.resolve(r) // refused, or finished before: the operation's recorded outcome
			return f
		}
	} else {
		x.checkChild(&o, w.Name(), childID)
	}
	x.trackChild(childID, detached)
	if x.replay != nil {
		return f // a replay check runs no child; waiting for it ends the check
	}
	if x.e.coord != nil {
		// Any engine with the workflow may run it; this one has it now
		// (replay reaches here without registering it above).
		if err := x.e.register(w); err != nil {
			x.stop(abortClose, err)
			x.exit()
		}
		x.e.kickClaims()
	} else if _, err := x.e.attach(childID, w); err != nil {
		x.stop(abortClose, err)
		x.exit()
	}
	lr := x.run
	x.childWaits.Add(1)
	f.st.poll = func() {
		if r, ok := lr.takeChildResult(x.row.Epoch, o.pos); ok {
			f.st.resolve(r)
			x.childWaits.Add(-1)
		}
	}
	return f
}

// createChild journals the child's start at o and creates the child run,
// in one commit. If the child cannot be created (its input does not
// encode, or its id is taken by another run) it records that failure as
// the operation's outcome and returns it with false. If the child exists
// and finished (it was this run's child at this position in an earlier
// epoch: see ContinueAsNew), it records the child's outcome too, since the
// child, which never runs twice, delivered it to that epoch's journal, and
// returns it with false.
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
		return fail(errorf("durable: child run %s: the id belongs to another run (workflow %s, parent %s): %w", clip.Q(childID), clip.Q(old.Workflow), clip.Q(old.Parent), ErrWorkflowMismatch))
	case err == nil && old.ParentEpoch != x.row.Epoch && !old.Status.Terminal():
		// Started at this position in an earlier epoch and still running:
		// its result goes to that epoch, never to this one.
		return fail(errorf("durable: child run %s: the id belongs to a child the run started before it continued as new, which is still running: %w", clip.Q(childID), ErrWorkflowMismatch))
	case err != nil && !isNotFound(err):
		x.stop(x.commitFailure(err))
		x.exit()
	}
	flags := uint8(0)
	if sc.detached {
		flags = flagDetached
	}
	r := o.record(kindChild, name, flags)
	r.Data = []byte(childID)
	b := &journal.Batch{
		Append: []journal.Append{x.appendOf(r)},
		Create: []journal.Run{{ID: childID, Workflow: name, Status: journal.StatusRunning, Input: input, Builds: x.e.startBuilds(),
			Parent: x.id, ParentPos: o.pos, ParentEpoch: x.row.Epoch, Deadline: sc.deadlineFrom(x.now())}},
	}
	if at := sc.startFrom(x.now()); !at.IsZero() {
		b.Create[0].WakeAt, b.Create[0].Idle = at, true // StartAt, StartAfter
	}
	if x.e.obs != nil {
		b.Create[0].Meta = x.e.obsInject(x.octx, RunEvent{RunID: childID, Workflow: name, Parent: x.id})
	}
	finished := err == nil && old.Status.Terminal()
	if finished {
		res := o.record(kindChild, name, flagDone)
		res.Data = old.Output
		if old.Status != journal.StatusCompleted {
			res.Flags, res.Data = res.Flags|flagError, old.Err
		}
		b.Append = append(b.Append, x.appendOf(res))
		r = res
	}
	crashPoint("child-start", x.id, int(o.pos))
	if !x.commit(b) {
		x.exit()
	}
	crashPoint("child-started", x.id, int(o.pos))
	return r, !finished
}

// checkChild parks the run if the child whose start is recorded at o is
// not this run's child there: the journal is damaged (the start and the
// child are committed together), and waiting for the child's result would
// wait forever.
func (x *executor) checkChild(o *op, name, childID string) {
	row, err := x.e.store.GetRun(context.Background(), childID)
	switch {
	case isNotFound(err):
		x.park(errorf("durable: run %s: position %d records the start of child run %s, which does not exist: %w", clip.Q(x.id), o.pos, clip.Q(childID), journal.ErrCorrupt))
	case err != nil:
		x.stop(x.commitFailure(err))
		x.exit()
	case row.Parent != x.id || row.ParentPos != o.pos || row.Workflow != name:
		x.park(errorf("durable: run %s: position %d records the start of child run %s, which is a %s run of parent %s at %d: %w", clip.Q(x.id), o.pos, clip.Q(childID), clip.Q(row.Workflow), clip.Q(row.Parent), row.ParentPos, journal.ErrCorrupt))
	}
}
