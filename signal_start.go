package durable

import (
	"context"
	"encoding/json"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// SendWithStart delivers msg to run id on channel, creating the run first
// (workflow w, input in, opts) if it does not exist: the creation and the
// message are one commit, so "start if absent, then deliver" has no race.
// Concurrent calls with one id make one run, and the run receives every
// call's message exactly once ([Receive]). It is Temporal's
// signal-with-start: use it to feed a run that may or may not be there yet
// (a per-customer aggregator, a debouncer).
//
// An existing run keeps its input and options. A run of another workflow
// fails with [ErrWorkflowMismatch] and a finished run with [ErrFinished]
// (run ids are never reused: to start again, use another id); a msg or in
// that cannot be encoded fails with [ErrPayload]. Nothing is stored then.
// msg may be a json.RawMessage, as with [Send]. ctx bounds only this call.
func SendWithStart[I, O any](ctx context.Context, e *Engine, w *Workflow[I, O], id string, in I, channel string, msg any, opts ...StartOption) (*Handle[O], error) {
	id, input, err := startInput(e, w, id, in, "SendWithStart")
	if err != nil {
		return nil, err
	}
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	var data []byte
	if j, ok := msg.(json.RawMessage); ok {
		data, err = encodeJSONMessage(j, e.cfg.MaxPayloadBytes)
	} else {
		data, err = encodePayload(msg, e.cfg.MaxPayloadBytes)
	}
	if err != nil {
		return nil, payloadErr(err, "message on channel %q for run %q", channel, id)
	}
	// A run of another workflow must not get the message. (The commit
	// below would create nothing and deliver to it.)
	switch old, err := e.store.GetRun(ctx, id); {
	case err == nil && old.Workflow != w.Name():
		return nil, errorf("durable: send with start to run %s of workflow %s: it is a %s run: %w", clip.Q(id), clip.Q(w.Name()), clip.Q(old.Workflow), ErrWorkflowMismatch)
	case err != nil && !isNotFound(err):
		return nil, e.sendStartErr(id, channel, err)
	}

	var sc startConfig
	for _, o := range opts {
		if o != nil {
			o(&sc)
		}
	}
	if sc.queue != "" || sc.dedupKey != "" || sc.prioritySet {
		return nil, &ArgError{Msg: "durable: SendWithStart: OnQueue, WithPriority and WithDedupKey are for Start"}
	}
	now := e.clock.Now()
	row := journal.Run{ID: id, Workflow: w.Name(), Status: journal.StatusRunning, Input: input, Deadline: sc.deadlineFrom(now), CreatedAt: now, Builds: e.startBuilds()}
	if at := sc.startFrom(now); !at.IsZero() {
		row.WakeAt, row.Idle = at, true
	}
	if e.obs != nil {
		row.Meta = e.obsInject(ctx, RunEvent{RunID: id, Workflow: w.Name()})
	}
	row.Owner = e.engineID // with a coordinator: owned by this engine if created
	b := &journal.Batch{Now: now, Create: []journal.Run{row}, Send: []journal.Message{{RunID: id, Channel: channel, Data: data}}}
	if err := e.commit(ctx, b); err != nil {
		return nil, e.sendStartErr(id, channel, err)
	}
	crashPoint("start", id, -1)
	if e.coord == nil {
		if _, err := e.attach(id, w); err != nil {
			return nil, err
		}
	} else if got, err := e.store.GetRun(ctx, id); err == nil && got.Owner == e.engineID && !got.Status.Terminal() {
		// Created by this call (or owned here already): this engine runs it.
		if err := e.attachOwned(id, w, got.Token, nil); err != nil {
			return nil, err
		}
	} else {
		e.kickClaims() // whichever engine owns or claims it runs it
	}
	e.wakeOrLoad(id)
	return &Handle[O]{e: e, id: id}, nil
}

func (e *Engine) sendStartErr(id, channel string, err error) error {
	if e.isClosed() {
		return ErrClosed
	}
	return errorf("durable: send with start to run %s on %s: %w", clip.Q(id), clip.Q(channel), err)
}
