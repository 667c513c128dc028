package durable

import (
	"context"
	"errors"
	"fmt"

	"github.com/durable-go/durable/journal"
)

// ContinueAsNew ends the current epoch of the run and starts it again from
// the top with input in, under the same id: return its result from the
// workflow function,
//
//	if durable.WorkflowInfoFrom(ctx).Positions > 10_000 {
//		return zero, durable.ContinueAsNew(ctx, state)
//	}
//
// The new epoch's journal starts empty, so a workflow that loops forever
// (polling, a long-lived entity) keeps its history short; the old epoch's
// journal is kept until retention removes it (Config.Retention). Handles
// keep waiting for the run's final result; the run's deadline, parent and
// cancel request carry over. If in cannot be encoded, ContinueAsNew
// returns that error instead (and the workflow fails with it if it returns
// it).
//
// Return its error as it is. The engine finds it anywhere in the
// returned error's chain, so errors.Join(err, ContinueAsNew(ctx, in))
// continues the run as new too, and err is dropped: it is not recorded.
func ContinueAsNew[I any](ctx Context, in I) error {
	x := ctx.executor()
	b, err := encodePayload(in, x.e.cfg.MaxPayloadBytes)
	if err != nil {
		return payloadErr(err, "input to continue run %q", x.id)
	}
	return &continueAsNew{runID: x.id, input: b}
}

// continueAsNew is the error ContinueAsNew returns; finish acts on it.
type continueAsNew struct {
	runID string
	input []byte
}

func (c *continueAsNew) Error() string {
	return fmt.Sprintf("durable: run %q continues as new", c.runID)
}

// continued starts the run's next epoch: it records it, and loads the run
// again from its (empty) new journal.
func (x *executor) continued(c *continueAsNew) {
	now, err := x.e.updateRun(context.Background(), journal.Update{RunID: x.id, ContinueAsNew: true, Input: c.input}, x.run.fence())
	if err != nil {
		x.reason, x.reasonErr = x.commitFailure(err)
		x.exited()
		return
	}
	x.e.noteFinish(now)
	if x.e.obs != nil {
		x.obsStopped(StopContinued, nil)
	}
	lr := x.run
	lr.mu.Lock()
	lr.childResults = nil
	lr.mu.Unlock()
	lr.setIdle()
	x.e.enqueueLoad(lr)
}

// asContinue reports whether the workflow returned ContinueAsNew for its
// own run.
func (x *executor) asContinue(err error) (*continueAsNew, bool) {
	var c *continueAsNew
	if errors.As(err, &c) && c.runID == x.id {
		return c, true
	}
	return nil, false
}
