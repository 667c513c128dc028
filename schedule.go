package durable

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// Schedule says when and what a schedule starts: a run of Workflow with
// Input at every slot of Cron (in Zone) or of Every. See
// [Engine.CreateSchedule]. The zero value is not a valid schedule: give
// Workflow and one of Cron and Every.
type Schedule struct {
	// Workflow is the name of the workflow each firing starts. An engine
	// that has it registered runs the firings (any engine of a shared
	// store).
	Workflow string

	// Input is the input of every firing, encoded once when the schedule
	// is created or updated: a value of the workflow's input type, or a
	// json.RawMessage (as the CLI and the dashboard send), decoded with
	// encoding/json into the input type when a firing starts.
	Input any

	// Cron is a cron expression of five fields (minute, hour, day of
	// month, month, day of week) or a descriptor (@yearly, @monthly,
	// @weekly, @daily, @hourly), parsed by github.com/robfig/cron/v3.
	// Exclusive with Every.
	Cron string

	// Zone is the IANA time zone (such as "America/New_York") that Cron's
	// fields are read in, from the system's time zone database (import
	// time/tzdata to embed one). Defaults to UTC. Across a change of
	// daylight-saving time, slots follow robfig/cron: a time that does
	// not exist that day (02:30 when clocks jump from 02:00 to 03:00)
	// has no slot, and an hour that repeats (01:00 to 02:00 when clocks
	// go back) has the slots of both passes ("0 * * * *" fires at 01:00
	// EDT and again at 01:00 EST).
	Zone string

	// Every is a fixed interval, at least a second: slots are Offset plus
	// multiples of Every from the Unix epoch (Every: time.Hour fires on
	// the hour, UTC), so they do not move when the schedule is updated.
	// Exclusive with Cron.
	Every time.Duration

	// Offset shifts the slots of Every; shorter than Every.
	Offset time.Duration

	// Jitter delays each firing by up to Jitter after its slot, by an
	// amount drawn from the schedule's name and the slot (the same in
	// every process and on every replay), to spread load. Keep it below
	// the time between slots; with Every it must be shorter than Every.
	// The firing's run id names the slot, not the delayed time.
	Jitter time.Duration

	// Grace is how late a firing may start and still count as on time.
	// A slot whose firing time is more than Grace in the past when the
	// scheduler gets to it (the engines were down, say) was missed, and
	// CatchUp decides whether it runs. Defaults to 1 minute.
	Grace time.Duration

	// Overlap decides what happens when a slot comes while the previous
	// firing still runs. Defaults to OverlapSkip.
	Overlap OverlapPolicy

	// CatchUp decides which missed slots run. Defaults to CatchUpLatest.
	CatchUp CatchUpPolicy

	// CatchUpMax is, with CatchUpAll, how many missed slots run at most
	// (the latest ones, oldest first). Defaults to 100; at most 10,000.
	CatchUpMax int
}

// OverlapPolicy says what a schedule does with a slot that comes while its
// previous firing (the run it started last) is still running. A firing
// that is parked or finished does not overlap.
type OverlapPolicy uint8

const (
	// OverlapSkip does not start the slot: it is recorded as skipped.
	OverlapSkip OverlapPolicy = iota
	// OverlapBufferOne starts the slot when the previous firing ends
	// (looked at after 1 second, then less and less often, up to every
	// minute); while one slot waits, further slots are skipped.
	OverlapBufferOne
	// OverlapAllowAll starts every slot, whatever runs.
	OverlapAllowAll
)

// String returns "skip", "buffer-one" or "allow-all".
func (p OverlapPolicy) String() string {
	switch p {
	case OverlapSkip:
		return "skip"
	case OverlapBufferOne:
		return "buffer-one"
	case OverlapAllowAll:
		return "allow-all"
	}
	return "overlap(" + strconv.Itoa(int(p)) + ")"
}

// CatchUpPolicy says which missed slots (see Schedule.Grace) a schedule
// runs when it gets to them late, after the engines were down.
type CatchUpPolicy uint8

const (
	// CatchUpLatest runs one firing for the missed slots: the latest of
	// them, unless a slot is on time (then that one runs, and the missed
	// ones do not).
	CatchUpLatest CatchUpPolicy = iota
	// CatchUpSkip runs no missed slot.
	CatchUpSkip
	// CatchUpAll runs the missed slots, oldest first, at most
	// Schedule.CatchUpMax of them (the latest ones). The overlap policy
	// applies to them as to any slot: with OverlapSkip only the first
	// starts while it runs.
	CatchUpAll
)

// String returns "latest", "skip" or "all".
func (p CatchUpPolicy) String() string {
	switch p {
	case CatchUpLatest:
		return "latest"
	case CatchUpSkip:
		return "skip"
	case CatchUpAll:
		return "all"
	}
	return "catch-up(" + strconv.Itoa(int(p)) + ")"
}

// ScheduleInfo is a schedule as [Engine.GetSchedule] and
// [Engine.ListSchedules] see it.
type ScheduleInfo struct {
	Name string
	// RunID is the id of the run that keeps the schedule
	// ("schedule:<name>", of workflow "durable.schedule").
	RunID string
	// Spec is the schedule; its Input is the encoded input rendered as
	// a json.RawMessage.
	Spec   Schedule
	Paused bool
	// Next is the next slot, if the schedule is not paused (its firing
	// comes up to Spec.Jitter later); zero if there is none.
	Next time.Time
	// Buffered is the slot waiting for the previous firing to end
	// (OverlapBufferOne); zero if none.
	Buffered time.Time
	// Recent are the latest firings, newest first: at most 20.
	Recent []Firing
	// Started counts the runs the schedule started, Skipped the slots it
	// skipped because the previous firing was running, and Missed the
	// slots it missed and did not run (see CatchUpPolicy).
	Started, Skipped, Missed int
	CreatedAt, UpdatedAt     time.Time
}

// Firing is what a schedule did at one slot.
type Firing struct {
	// Slot is the slot's time (the time of the trigger for a firing of
	// [Engine.TriggerSchedule]).
	Slot time.Time `msgpack:"s"`
	// At is when the scheduler acted.
	At time.Time `msgpack:"a"`
	// Action is FiringStarted, FiringSkipped, FiringBuffered or
	// FiringFailed.
	Action string `msgpack:"x"`
	// RunID is the run started (or to start, when buffered).
	RunID string `msgpack:"r,omitempty"`
	// Manual reports a firing of [Engine.TriggerSchedule].
	Manual bool `msgpack:"m,omitempty"`
	// Err says why a firing failed (the run could not be created).
	Err string `msgpack:"e,omitempty"`
}

// Firing actions.
const (
	FiringStarted  = "started"
	FiringSkipped  = "skipped"  // the previous firing was running (OverlapSkip, or a full buffer)
	FiringBuffered = "buffered" // waits for the previous firing to end (OverlapBufferOne)
	FiringFailed   = "failed"   // the run could not be created
)

// ErrScheduleExists: [Engine.CreateSchedule] found a schedule with that
// name.
var ErrScheduleExists = errors.New("durable: schedule exists")

// CreateSchedule creates schedule name, which starts a run of
// s.Workflow at each slot, from the first slot after now on. The run id
// of a firing is "<name>@<slot in RFC 3339, UTC>" (say
// "nightly@2026-03-01T02:00:00Z"), so each slot starts at most one run,
// across restarts and across the engines of a shared store.
//
// The schedule is a run of its own, "schedule:<name>" of the internal
// workflow "durable.schedule", which every engine has: it sleeps
// durably until the next slot, starts the firing, and handles the
// control calls (UpdateSchedule, ...), which are messages to it. It is
// stored in the journal like any run and survives restarts; slots that
// came while no engine ran are missed, and Schedule.CatchUp decides
// which of them run. Engines of a shared store run the schedule on one
// engine at a time, as any run; an engine that has no workflows
// (none in Config.Workflows, none registered by Start since) does not run
// schedules on a shared store: a CLI's engine creates and controls them,
// and its calls wait for an engine with workflows to take them.
//
// name is 1 to 200 letters, digits and "-_.:". Errors: a bad name or spec
// (an unparsable cron expression, an unknown zone) matches [ErrInvalid],
// an input that cannot be encoded [ErrPayload], an existing schedule
// [ErrScheduleExists]. CreateSchedule returns once the schedule has
// taken the call; ctx bounds the wait (the creation is stored before the
// wait, and takes effect if ctx ends first). Delete schedules with
// [Engine.DeleteSchedule], not by canceling their run: a canceled
// schedule's name stays taken until retention deletes the run.
func (e *Engine) CreateSchedule(ctx context.Context, name string, s Schedule) error {
	if e == nil {
		return errNilEngine
	}
	spec, err := e.scheduleSpec(name, s)
	if err != nil {
		return err
	}
	_, err = e.scheduleCall(ctx, name, scheduleMsg{Op: opCreate, Spec: spec}, true)
	return err
}

// UpdateSchedule replaces the spec of schedule name with s (all of it:
// give the input again). Slots from now on follow s; a firing waiting
// in the buffer stays. Errors as [Engine.CreateSchedule], and an unknown
// schedule matches [ErrNotFound].
func (e *Engine) UpdateSchedule(ctx context.Context, name string, s Schedule) error {
	if e == nil {
		return errNilEngine
	}
	spec, err := e.scheduleSpec(name, s)
	if err != nil {
		return err
	}
	_, err = e.scheduleCall(ctx, name, scheduleMsg{Op: opUpdate, Spec: spec}, false)
	return err
}

// PauseSchedule stops schedule name from firing: slots that come while
// it is paused do not run, even after [Engine.ResumeSchedule], and are
// not counted as missed. A paused schedule can still be triggered.
// Errors: [ErrNotFound] for an unknown schedule, [ErrInvalid] for a bad
// name.
func (e *Engine) PauseSchedule(ctx context.Context, name string) error {
	return e.scheduleOp(ctx, name, opPause)
}

// ResumeSchedule makes a paused schedule fire again, from the first slot
// after now. Resuming a running schedule changes nothing. Errors as
// [Engine.PauseSchedule].
func (e *Engine) ResumeSchedule(ctx context.Context, name string) error {
	return e.scheduleOp(ctx, name, opResume)
}

// DeleteSchedule deletes schedule name: it fires no more (runs it started
// go on), and the name is free for [Engine.CreateSchedule] again. Errors
// as [Engine.PauseSchedule].
func (e *Engine) DeleteSchedule(ctx context.Context, name string) error {
	return e.scheduleOp(ctx, name, opDelete)
}

// TriggerSchedule starts a firing of schedule name now, paused or not,
// whatever the overlap policy, and returns its run id
// ("<name>@trigger:<time, RFC 3339>"). Errors as [Engine.PauseSchedule].
func (e *Engine) TriggerSchedule(ctx context.Context, name string) (string, error) {
	if e == nil {
		return "", errNilEngine
	}
	if err := checkScheduleName(name); err != nil {
		return "", err
	}
	a, err := e.scheduleCall(ctx, name, scheduleMsg{Op: opTrigger}, false)
	return a.RunID, err
}

func (e *Engine) scheduleOp(ctx context.Context, name string, op uint8) error {
	if e == nil {
		return errNilEngine
	}
	if err := checkScheduleName(name); err != nil {
		return err
	}
	_, err := e.scheduleCall(ctx, name, scheduleMsg{Op: op}, false)
	return err
}

// GetSchedule returns schedule name. It fails with an error matching
// [ErrNotFound] if there is none.
func (e *Engine) GetSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	if e == nil {
		return ScheduleInfo{}, errNilEngine
	}
	if err := checkScheduleName(name); err != nil {
		return ScheduleInfo{}, err
	}
	st, row, err := e.scheduleState(ctx, scheduleRunID(name))
	if err == nil && (st.Deleted || row.Status.Terminal()) {
		err = journal.ErrNotFound
	}
	if err != nil {
		return ScheduleInfo{}, e.scheduleErr(name, err)
	}
	return st.info(row), nil
}

// ListSchedules returns every schedule, by name.
func (e *Engine) ListSchedules(ctx context.Context) ([]ScheduleInfo, error) {
	if e == nil {
		return nil, errNilEngine
	}
	runs, err := e.store.ListRuns(ctx, journal.Filter{Workflow: scheduleWorkflowName})
	if err != nil {
		if e.isClosed() {
			return nil, ErrClosed
		}
		return nil, errorf("durable: list schedules: %w", err)
	}
	var out []ScheduleInfo
	for _, r := range runs {
		if r.Status.Terminal() {
			continue
		}
		st, row, err := e.scheduleState(ctx, r.ID)
		if isNotFound(err) {
			continue // deleted by retention meanwhile
		}
		if err != nil {
			return out, errorf("durable: list schedules: %w", err)
		}
		if !st.Deleted && st.Name != "" {
			out = append(out, st.info(row))
		}
	}
	return out, nil
}

// scheduleSpec checks name and s and encodes s.
func (e *Engine) scheduleSpec(name string, s Schedule) (scheduleSpec, error) {
	if err := checkScheduleName(name); err != nil {
		return scheduleSpec{}, err
	}
	sp := scheduleSpec{Workflow: s.Workflow, Cron: s.Cron, Zone: s.Zone, Every: s.Every, Offset: s.Offset,
		Jitter: s.Jitter, Grace: s.Grace, Overlap: s.Overlap, CatchUp: s.CatchUp, CatchUpMax: s.CatchUpMax}
	sl, err := sp.compile()
	if err != nil {
		return sp, err
	}
	if sl.next(e.clock.Now()).IsZero() {
		return sp, invalidf("durable: schedule %s: cron %s never fires", clip.Q(name), clip.Q(s.Cron))
	}
	if j, ok := s.Input.(json.RawMessage); ok {
		sp.Input, err = encodeJSONMessage(j, e.cfg.MaxPayloadBytes/4)
	} else {
		sp.Input, err = encodePayload(s.Input, e.cfg.MaxPayloadBytes/4)
	}
	if err != nil {
		return sp, payloadErr(err, "input of schedule %q", name)
	}
	e.mu.Lock()
	def := e.defs[s.Workflow]
	e.mu.Unlock()
	if def != nil {
		if err := def.checkInput(sp.Input, e.cfg.MaxPayloadBytes); err != nil {
			return sp, payloadErr(err, "input of schedule %q for workflow %q", name, s.Workflow)
		}
	}
	return sp, nil
}

// scheduleErr wraps err of a call on schedule name.
func (e *Engine) scheduleErr(name string, err error) error {
	if e.isClosed() {
		return ErrClosed
	}
	if isNotFound(err) {
		return errorf("durable: schedule %s: %w", clip.Q(name), ErrNotFound)
	}
	return errorf("durable: schedule %s: %w", clip.Q(name), err)
}
