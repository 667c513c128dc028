package durable

import (
	"context"
	"errors"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// A schedule is a run of the internal workflow durable.schedule, id
// "schedule:<name>", whose input is its state (scheduleState). It loops:
// fire the slots that are due (a step per slot that starts the firing's
// run, whose id names the slot, so a slot starts once however often the
// step runs), publish its state with SetEvent, and wait for the next slot
// or a control message (AwaitAny of a timer and a receive). Control calls
// (schedule.go) send a message with a request id and wait for the state
// to acknowledge it. Every scheduleEpoch positions the run continues as
// new with its state, so its journal stays short.

const (
	scheduleWorkflowName = "durable.schedule"
	scheduleChannel      = "durable.schedule"
	scheduleEventKey     = "schedule"
	schedulePrefix       = "schedule:"
	// scheduleEpoch is how many positions a schedule's epoch makes before
	// it continues as new (about 80 firings).
	scheduleEpoch = 400
	// maxRecent and maxAcks bound the firings and acknowledgements the
	// state keeps.
	maxRecent = 20
	maxAcks   = 32
	// bufferPollMax bounds the wait between two looks at a previous
	// firing that a buffered slot waits for.
	bufferPollMax = time.Minute
)

// scheduleWorkflow keeps one schedule. Every engine registers it
// (registerSchedules).
var scheduleWorkflow = Define(scheduleWorkflowName, runSchedule)

func scheduleRunID(name string) string { return schedulePrefix + name }

// Control operations.
const (
	opCreate uint8 = iota + 1
	opUpdate
	opPause
	opResume
	opTrigger
	opDelete
)

// scheduleMsg is a control call, sent to the schedule's run.
type scheduleMsg struct {
	Op   uint8        `msgpack:"o"`
	Req  string       `msgpack:"r"`
	Spec scheduleSpec `msgpack:"s"`
}

// Acknowledgement codes.
const (
	ackOK uint8 = iota
	ackNotFound
	ackExists
)

// scheduleAck acknowledges control call Req in the state.
type scheduleAck struct {
	Req   string `msgpack:"r"`
	Code  uint8  `msgpack:"c,omitempty"`
	RunID string `msgpack:"i,omitempty"` // a trigger's run
	Err   string `msgpack:"e,omitempty"` // a trigger that failed
}

// scheduleState is a schedule's run input and its published event.
type scheduleState struct {
	Name     string        `msgpack:"n"`
	Spec     scheduleSpec  `msgpack:"p"`
	Paused   bool          `msgpack:"pa,omitempty"`
	Deleted  bool          `msgpack:"d,omitempty"`
	Cursor   time.Time     `msgpack:"c"`            // every slot up to it is handled
	Buffered time.Time     `msgpack:"b,omitempty"`  // OverlapBufferOne's waiting slot
	Poll     time.Duration `msgpack:"bp,omitempty"` // the next look at the previous firing
	LastRun  string        `msgpack:"l,omitempty"`  // the run started last
	Next     time.Time     `msgpack:"x,omitempty"`  // the next slot (published)
	Recent   []Firing      `msgpack:"r,omitempty"`  // newest last
	Started  int           `msgpack:"ns,omitempty"`
	Skipped  int           `msgpack:"nk,omitempty"`
	Missed   int           `msgpack:"nm,omitempty"`
	Acks     []scheduleAck `msgpack:"a,omitempty"`
	Created  time.Time     `msgpack:"t0"`
	Updated  time.Time     `msgpack:"t1"`
}

// fireOutcome is the recorded result of a firing's step.
type fireOutcome struct {
	Action string `msgpack:"a"` // FiringStarted, FiringFailed or "busy"
	Err    string `msgpack:"e,omitempty"`
}

const busy = "busy"

func runSchedule(ctx Context, st scheduleState) (struct{}, error) {
	recv := OnReceive[scheduleMsg](scheduleChannel)
	for {
		switch pos := WorkflowInfoFrom(ctx).Positions; {
		case pos >= scheduleEpoch, st.Deleted && pos > 0:
			// A deleted schedule keeps no history: its new epoch waits
			// for a create, and has nothing but its input.
			return struct{}{}, ContinueAsNew(ctx, st)
		}
		now := Now(ctx)
		changed := false
		if sl, err := st.Spec.compile(); err == nil && st.active() {
			if changed, err = st.tick(ctx, sl, now); err != nil {
				return struct{}{}, err
			}
		}
		wake := st.plan(now)
		if changed {
			if err := SetEvent(ctx, scheduleEventKey, st); errors.Is(err, ErrCanceled) {
				return struct{}{}, err
			}
		}
		items := []Awaitable{recv}
		if !wake.IsZero() {
			items = append(items, timerAt(ctx, wake))
		}
		i, err := AwaitAny(ctx, items...)
		if err != nil {
			return struct{}{}, err
		}
		if i == 0 {
			m, _ := recv.Value()
			if err := st.apply(ctx, m); err != nil {
				return struct{}{}, err
			}
			// Publish even a deletion: the call waits for its
			// acknowledgement, and the next epoch's input is not an event.
			st.plan(now)
			if err := SetEvent(ctx, scheduleEventKey, st); errors.Is(err, ErrCanceled) {
				return struct{}{}, err
			}
		}
	}
}

// active reports whether the schedule fires.
func (st *scheduleState) active() bool {
	return !st.Deleted && !st.Paused && !st.Created.IsZero()
}

// plan sets st.Next and returns when the scheduler must look again: the
// next slot's firing time, or the next look at the previous firing for a
// buffered slot; zero if only a control call can change anything.
func (st *scheduleState) plan(now time.Time) time.Time {
	st.Next = time.Time{}
	sl, err := st.Spec.compile()
	if err != nil || !st.active() {
		return time.Time{}
	}
	var wake time.Time
	st.Next, wake = sl.nextFiring(&st.Spec, st.Name, st.Cursor)
	if !st.Buffered.IsZero() {
		if b := now.Add(st.Poll); wake.IsZero() || b.Before(wake) {
			wake = b
		}
	}
	return wake
}

// tick fires what is due at now: the buffered slot if the previous
// firing ended, then the due slots. It reports whether the state changed
// in a way worth publishing.
func (st *scheduleState) tick(ctx Context, sl *slotter, now time.Time) (bool, error) {
	changed := false
	if !st.Buffered.IsZero() {
		id := firingID(st.Name, st.Buffered)
		r, err := st.fire(ctx, id, true)
		if err != nil {
			return false, err
		}
		if r.Action == busy {
			st.Poll = min(2*st.Poll, bufferPollMax)
		} else {
			st.done(Firing{Slot: st.Buffered, At: now, RunID: id}, r)
			st.Buffered, st.Poll = time.Time{}, 0
			changed = true
		}
	}
	slots, dropped, last := sl.dueSlots(&st.Spec, st.Name, st.Cursor, now)
	st.Cursor = last
	if dropped > 0 {
		st.Missed += dropped
		changed = true
	}
	for _, slot := range slots {
		changed = true
		id := firingID(st.Name, slot)
		r, err := st.fire(ctx, id, st.Spec.Overlap != OverlapAllowAll)
		if err != nil {
			return false, err
		}
		f := Firing{Slot: slot, At: now, RunID: id}
		switch {
		case r.Action != busy:
			st.done(f, r)
		case st.Spec.Overlap == OverlapBufferOne && st.Buffered.IsZero():
			st.Buffered, st.Poll = slot, time.Second
			f.Action = FiringBuffered
			st.record(f)
		default:
			f.Action, f.RunID = FiringSkipped, ""
			st.Skipped++
			st.record(f)
		}
	}
	return changed, nil
}

// done records a firing whose step started (or failed to start) its run.
func (st *scheduleState) done(f Firing, r fireOutcome) {
	f.Action, f.Err = r.Action, r.Err
	if r.Action == FiringStarted {
		st.Started++
		st.LastRun = f.RunID
	}
	st.record(f)
}

func (st *scheduleState) record(f Firing) {
	st.Recent = append(st.Recent, f)
	if n := len(st.Recent) - maxRecent; n > 0 {
		st.Recent = append([]Firing(nil), st.Recent[n:]...)
	}
}

// fire starts run id of the schedule's workflow, in a step: at least
// once, and the run id makes the start happen once. With check it first
// looks whether the previous firing still runs, and then starts nothing
// and returns busy. It returns an error only for the run's cancellation.
func (st *scheduleState) fire(ctx Context, id string, check bool) (fireOutcome, error) {
	e := ctx.executor().e
	last, sp := st.LastRun, st.Spec
	out, err := Step(ctx, "fire", func(c context.Context) (fireOutcome, error) {
		if check && last != "" {
			row, err := e.store.GetRun(c, last)
			switch {
			case err == nil && row.Status == journal.StatusRunning:
				return fireOutcome{Action: busy}, nil
			case err != nil && !isNotFound(err):
				return fireOutcome{}, err
			}
		}
		if err := e.startByName(c, sp.Workflow, id, sp.Input); err != nil {
			if errors.Is(err, ErrInvalid) || errors.Is(err, ErrWorkflowMismatch) {
				return fireOutcome{Action: FiringFailed, Err: err.Error()}, nil
			}
			return fireOutcome{}, err
		}
		return fireOutcome{Action: FiringStarted}, nil
	})
	if err != nil {
		if errors.Is(err, ErrCanceled) {
			return out, err
		}
		return fireOutcome{Action: FiringFailed, Err: err.Error()}, nil
	}
	return out, nil
}

// apply carries out control call m and acknowledges it in the state.
func (st *scheduleState) apply(ctx Context, m scheduleMsg) error {
	now := Now(ctx)
	a := scheduleAck{Req: m.Req}
	switch {
	case m.Op == opCreate:
		if !st.Deleted && !st.Created.IsZero() {
			a.Code = ackExists
			break
		}
		*st = scheduleState{Name: st.Name, Spec: m.Spec, Cursor: now, Created: now, Updated: now, Acks: st.Acks}
	case st.Deleted || st.Created.IsZero():
		a.Code = ackNotFound
	case m.Op == opUpdate:
		st.Spec, st.Cursor, st.Updated = m.Spec, now, now
	case m.Op == opPause:
		st.Paused, st.Updated = true, now
	case m.Op == opResume:
		if st.Paused {
			st.Paused, st.Cursor, st.Updated = false, now, now
		}
	case m.Op == opTrigger:
		id := triggerID(st.Name, now)
		r, err := st.fire(ctx, id, false)
		if err != nil {
			return err
		}
		st.done(Firing{Slot: now, At: now, RunID: id, Manual: true}, r)
		a.RunID, a.Err = id, r.Err
	case m.Op == opDelete:
		*st = scheduleState{Name: st.Name, Deleted: true, Acks: st.Acks}
	}
	st.Acks = append(st.Acks, a)
	if n := len(st.Acks) - maxAcks; n > 0 {
		st.Acks = append([]scheduleAck(nil), st.Acks[n:]...)
	}
	return nil
}

// info is the state as ScheduleInfo.
func (st *scheduleState) info(row journal.Run) ScheduleInfo {
	sp := st.Spec
	in := ScheduleInfo{
		Name:  st.Name,
		RunID: row.ID,
		Spec: Schedule{Workflow: sp.Workflow, Cron: sp.Cron, Zone: sp.Zone, Every: sp.Every, Offset: sp.Offset,
			Jitter: sp.Jitter, Grace: sp.Grace, Overlap: sp.Overlap, CatchUp: sp.CatchUp, CatchUpMax: sp.CatchUpMax},
		Paused: st.Paused, Next: st.Next, Buffered: st.Buffered,
		Started: st.Started, Skipped: st.Skipped, Missed: st.Missed,
		CreatedAt: st.Created, UpdatedAt: st.Updated,
	}
	if j := inputJSON(sp.Input); j != nil {
		in.Spec.Input = j
	}
	for i := len(st.Recent) - 1; i >= 0; i-- {
		in.Recent = append(in.Recent, st.Recent[i])
	}
	if st.Paused {
		in.Next = time.Time{}
	}
	return in
}

// scheduleState reads the state of schedule run id: its latest published
// event, or its input if it published none in this epoch.
func (e *Engine) scheduleState(ctx context.Context, id string) (scheduleState, journal.Run, error) {
	var st scheduleState
	data, found, err := e.findEvent(ctx, id, scheduleEventKey)
	if err != nil && !errors.Is(err, ErrFinished) {
		return st, journal.Run{}, err
	}
	row, err := e.store.GetRun(ctx, id)
	if err != nil {
		return st, row, err
	}
	if row.Workflow != scheduleWorkflowName {
		return st, row, errorf("durable: run %s is a %s run, not a schedule: %w", clip.Q(id), clip.Q(row.Workflow), ErrWorkflowMismatch)
	}
	if !found {
		data = row.Input
	}
	if err := decodePayload(data, &st, e.cfg.MaxPayloadBytes); err != nil {
		return st, row, payloadErr(err, "state of schedule run %q", id)
	}
	return st, row, nil
}

// scheduleCall sends control call m to schedule name (creating its run
// first with create) and waits for the schedule to acknowledge it.
func (e *Engine) scheduleCall(ctx context.Context, name string, m scheduleMsg, create bool) (scheduleAck, error) {
	id := scheduleRunID(name)
	m.Req = newID()
	if err := e.runSchedules(); err != nil {
		return scheduleAck{}, err
	}
	if create {
		if err := e.createSchedule(ctx, name, m); err != nil {
			return scheduleAck{}, err
		}
	} else {
		st, row, err := e.scheduleState(ctx, id)
		if err == nil && (st.Deleted || st.Created.IsZero() || row.Status.Terminal()) {
			err = journal.ErrNotFound
		}
		if err == nil {
			err = Send(ctx, e, id, scheduleChannel, m)
			if errors.Is(err, ErrFinished) {
				err = journal.ErrNotFound
			}
		}
		if err != nil {
			return scheduleAck{}, e.scheduleErr(name, err)
		}
	}
	_, poll := e.store.(journal.Coordinator)
	for {
		w := e.events.watch(id)
		st, row, err := e.scheduleState(ctx, id)
		switch {
		case err == nil && row.Status == journal.StatusParked:
			err = errorf("the schedule's run %s is parked (see Engine.Get); the call is stored and is taken when the run resumes: %w", clip.Q(id), ErrParked)
		case err == nil && row.Status.Terminal():
			err = errorf("the schedule's run %s ended before it took the call: %w", clip.Q(id), ErrFinished)
		}
		if err != nil {
			e.events.unwatch(id, w)
			return scheduleAck{}, e.scheduleErr(name, err)
		}
		for _, a := range st.Acks {
			if a.Req == m.Req {
				e.events.unwatch(id, w)
				switch a.Code {
				case ackNotFound:
					return a, e.scheduleErr(name, journal.ErrNotFound)
				case ackExists:
					return a, errorf("durable: create schedule %s: %w", clip.Q(name), ErrScheduleExists)
				}
				if a.Err != "" {
					return a, errorf("durable: trigger schedule %s: %s", clip.Q(name), a.Err)
				}
				return a, nil
			}
		}
		var tick <-chan time.Time
		stop := func() bool { return false }
		if poll {
			tick, stop = e.clock.TimerAt(later(e.clock.Now(), eventPoll))
		}
		select {
		case <-w.ch:
		case <-tick:
		case <-ctx.Done():
			err = errorf("durable: schedule %s: waiting for the schedule to take the call (it is stored and will be taken): %w", clip.Q(name), ctx.Err())
		case <-e.ctx.Done():
			err = ErrClosed
		}
		stop()
		e.events.unwatch(id, w)
		if err != nil {
			return scheduleAck{}, err
		}
	}
}

// createSchedule creates the run of schedule name, if it does not exist,
// and sends it m, in one commit (as SendWithStart). An engine that does
// not run schedules (one without workflows on a shared store) leaves the
// new run to the engines that do.
func (e *Engine) createSchedule(ctx context.Context, name string, m scheduleMsg) error {
	id := scheduleRunID(name)
	e.mu.Lock()
	runsHere := e.defs[scheduleWorkflowName] != nil
	e.mu.Unlock()
	if runsHere {
		_, err := SendWithStart(ctx, e, scheduleWorkflow, id, scheduleState{Name: name, Deleted: true}, scheduleChannel, m)
		if errors.Is(err, ErrFinished) {
			err = errorf("durable: create schedule %s: its run %s ended (it was canceled?); the name is taken until retention deletes it: %w", clip.Q(name), clip.Q(id), ErrScheduleExists)
		}
		return err
	}
	input, err := encodePayload(scheduleState{Name: name, Deleted: true}, e.cfg.MaxPayloadBytes)
	if err != nil {
		return payloadErr(err, "schedule %q", name)
	}
	data, err := encodePayload(m, e.cfg.MaxPayloadBytes)
	if err != nil {
		return payloadErr(err, "schedule %q", name)
	}
	now := e.clock.Now()
	row := journal.Run{ID: id, Workflow: scheduleWorkflowName, Status: journal.StatusRunning, Input: input, CreatedAt: now, Builds: e.startBuilds()}
	b := &journal.Batch{Now: now, Create: []journal.Run{row}, Send: []journal.Message{{RunID: id, Channel: scheduleChannel, Data: data}}}
	if err := e.commit(ctx, b); err != nil {
		return e.scheduleErr(name, err)
	}
	if e.coord != nil {
		e.kickClaims()
	}
	return nil
}

// startByName creates run id of workflow name with an encoded input, if
// no run has the id, and runs it where its workflow is registered: here
// (attached as Start does), on another engine of a shared store, or on
// the next engine that registers it.
func (e *Engine) startByName(ctx context.Context, workflow, id string, input []byte) error {
	e.mu.Lock()
	def := e.defs[workflow]
	e.mu.Unlock()
	now := e.clock.Now()
	row := journal.Run{ID: id, Workflow: workflow, Status: journal.StatusRunning, Input: input, CreatedAt: now, Builds: e.startBuilds()}
	if def != nil {
		row.Owner = e.engineID // with a coordinator: this engine runs what it starts
	}
	if e.obs != nil {
		if _, err := e.store.GetRun(ctx, id); isNotFound(err) {
			row.Meta = e.obsInject(ctx, RunEvent{RunID: id, Workflow: workflow})
		}
	}
	got, created, err := e.store.CreateRun(ctx, row)
	if err != nil {
		if e.isClosed() {
			return ErrClosed
		}
		return errorf("durable: start run %s: %w", clip.Q(id), err)
	}
	crashPoint("schedule-fire", id, -1) // created; the firing's step not committed
	if got.Workflow != workflow {
		return errorf("durable: start run %s of workflow %s: it is a %s run: %w", clip.Q(id), clip.Q(workflow), clip.Q(got.Workflow), ErrWorkflowMismatch)
	}
	switch {
	case got.Status.Terminal():
	case def == nil || (e.coord != nil && !created):
		if e.coord != nil {
			e.kickClaims()
		}
	case e.coord == nil:
		_, err = e.attach(id, def)
	default:
		err = e.attachOwned(id, def, got.Token, &got)
	}
	return err
}

// runSchedules registers the schedule workflow with an engine on a
// shared store that had no workflows when it opened but has some now
// ([Start] registered them): without it, a schedule created on a
// journal.Memory by an engine whose workflows came with Start would wait
// for an engine that runs schedules, and there is none. An engine that
// still has no workflows (a CLI's) leaves schedules to the others.
func (e *Engine) runSchedules() error {
	e.mu.Lock()
	register := e.defs[scheduleWorkflowName] == nil && len(e.defs) > 0
	e.mu.Unlock()
	if register {
		return e.register(scheduleWorkflow)
	}
	return nil
}

// registerSchedules adds the schedule workflow to a new engine's
// definitions: always on a store of its own, and on a shared store only
// if the engine has workflows (a client engine, such as a CLI's, must
// not claim schedules).
func (e *Engine) registerSchedules(shared bool) error {
	if _, taken := e.defs[scheduleWorkflowName]; taken {
		return errorf("durable: Config.Workflows: the name %s is reserved for schedules", clip.Q(scheduleWorkflowName))
	}
	if !shared || len(e.defs) > 0 {
		e.defs[scheduleWorkflowName] = scheduleWorkflow
	}
	return nil
}

// timerAt is [NewTimer] firing at an absolute time: a slot's time is
// known, and NewTimer's duration would count from a later clock reading.
func timerAt(ctx Context, at time.Time) *Timer {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		x.misused(err)
		return &Timer{at: journalTime(at)}
	}
	defer x.leave()
	o := x.take(kindTimer, "")
	if o.full {
		x.park(x.tooLong())
	}
	t := &Timer{}
	if len(o.recs) > 0 {
		t.at = o.recs[0].Time
	} else {
		t.at = journalTime(at)
		r := o.record(kindTimer, "", flagDone)
		r.Time = t.at
		x.write(&t.at, r)
	}
	x.e.wakes.add(x.id, t.at, false)
	return t
}
