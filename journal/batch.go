package journal

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/durable-go/durable/internal/clip"
)

// Limits on identifiers. Payload sizes are the engine's business; these keep
// keys well inside every backend's limits.
const (
	MaxIDLen      = 512 // run ids and workflow names, in bytes
	MaxChannelLen = 256 // channel names, in bytes; no NUL byte
	MaxNameLen    = 1024
	MaxMetaLen    = 64 << 10 // Run.Meta, in bytes
	MaxBuilds     = 16       // Run.Builds: the first and the 15 latest
	MaxBuildLen   = 256      // one build id, in bytes
)

// txn is what a backend offers the batch rules: point reads and writes
// inside one transaction. Both backends implement it, so the rules of
// [Store.Commit] live in one place (plan and apply below).
type txn interface {
	getRun(id string) (*Run, error) // nil, nil if absent
	putRun(old, r *Run) error       // old is nil for a new run; keeps indexes
	hasRecord(id string, epoch, pos, seq uint32) (bool, error)
	putRecord(id string, epoch uint32, r *Record) error
	hasMessage(k MessageKey) (bool, error)
	hasMessages(id string) (bool, error) // any message in run id's inbox
	deleteMessage(k MessageKey) error
	putMessage(m *Message) error // assigns m.Seq
	deleteRun(r *Run) error      // with records of every epoch, inbox and index entries
	// expired returns up to limit expiry entries before t, oldest first.
	expired(before time.Time, limit int) ([]expiry, error)
	// purge removes what e names (a finished run, or an ended epoch's
	// records) and e itself.
	purge(e expiry) error

	// Queues (queue.go). putRun and deleteRun keep their indexes.
	dedupHolder(queue, key string) (string, error) // see QueueTx
	nextQueueSeq() (uint64, error)                 // see QueueTx
	// queueActive counts the active runs of queue, up to max at least.
	queueActive(queue string, max int) (int, error)
	// queueWaiting calls fn with the ids of queue's waiting runs in
	// admission order until fn returns false.
	queueWaiting(queue string, fn func(id string) (bool, error)) error
}

// expiry is an entry of the expiry index: a run that finished at At, or
// the records of epoch Epoch of run RunID, which ended at At.
type expiry struct {
	At    time.Time
	RunID string
	Epoch uint32
	Run   bool // the whole run, not one epoch
}

// plan is a validated batch: the writes to make, in order. Making it reads
// only; applying it fails only on I/O errors.
type plan struct {
	puts    []runPut
	appends []planAppend
	consume []MessageKey
	sends   []*Message
	deletes []*Run
}

type runPut struct{ old, new *Run }

type planAppend struct {
	Append
	epoch uint32
}

// makePlan checks b against the state t shows, operation by operation, as
// if the earlier operations of b were applied.
func makePlan(t txn, b *Batch, now time.Time) (*plan, error) {
	pl := planner{t: t, now: now}
	if err := pl.batch(b); err != nil {
		return nil, err
	}
	for _, id := range pl.order {
		pl.p.puts = append(pl.p.puts, *pl.touched[id])
	}
	return &pl.p, nil
}

// planner builds a plan, one method per operation of a batch.
type planner struct {
	t   txn
	now time.Time
	p   plan

	touched  map[string]*runPut // lazily: most batches touch no run
	order    []string           // touched ids, first touch first
	appended map[recKey]bool    // lazily: one append needs no duplicate check
	consumed map[MessageKey]bool
}

type recKey struct {
	id       string
	pos, seq uint32
}

func (pl *planner) batch(b *Batch) error {
	for i := range b.Create {
		if err := pl.create(b.Create[i]); err != nil {
			return err
		}
	}
	if len(b.Append) > 1 {
		pl.appended = make(map[recKey]bool, len(b.Append))
	}
	for _, a := range b.Append {
		if err := pl.append(a); err != nil {
			return err
		}
	}
	for _, u := range b.Update {
		if err := pl.update(u); err != nil {
			return err
		}
	}
	if len(b.Consume) > 1 {
		pl.consumed = make(map[MessageKey]bool, len(b.Consume))
	}
	for _, k := range b.Consume {
		if err := pl.consume(k); err != nil {
			return err
		}
	}
	for i := range b.Send {
		if err := pl.send(&b.Send[i]); err != nil {
			return err
		}
	}
	for _, id := range b.Delete {
		if err := pl.delete(id); err != nil {
			return err
		}
	}
	return nil
}

// get returns run id as the batch left it so far, or nil.
func (pl *planner) get(id string) (*Run, error) {
	if rp, ok := pl.touched[id]; ok {
		return rp.new, nil
	}
	return pl.t.getRun(id)
}

// touch returns the copy of old that the batch changes.
func (pl *planner) touch(old *Run) *Run {
	if rp, ok := pl.touched[old.ID]; ok {
		return rp.new
	}
	n := *old
	pl.put(&runPut{old: old, new: &n})
	return &n
}

func (pl *planner) put(rp *runPut) {
	if pl.touched == nil {
		pl.touched = map[string]*runPut{}
	}
	pl.touched[rp.new.ID] = rp
	pl.order = append(pl.order, rp.new.ID)
}

// live returns run id, which op needs to exist and not be finished.
func (pl *planner) live(op, id string) (*Run, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	r, err := pl.get(id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%s run %s: %w", op, clip.Q(id), ErrNotFound)
	}
	if r.Status.Terminal() {
		return nil, fmt.Errorf("%s run %s (%s): %w", op, clip.Q(id), r.Status, ErrFinished)
	}
	return r, nil
}

func (pl *planner) create(c Run) error {
	if err := checkNewRun(&c); err != nil {
		return err
	}
	old, err := pl.get(c.ID)
	if err != nil || old != nil {
		return err
	}
	c.CreatedAt, c.UpdatedAt = pl.now, pl.now
	c.Idle, c.Token = false, 0
	if c.Owner != "" {
		c.Token = 1 // created owned: see Coordinator
	}
	if err := newQueued(pl.t, &c); err != nil {
		return err
	}
	pl.put(&runPut{new: &c})
	return nil
}

func (pl *planner) append(a Append) error {
	r, err := pl.live("append to", a.RunID)
	if err != nil {
		return err
	}
	if a.Epoch != r.Epoch {
		return fmt.Errorf("append to run %s in epoch %d: the run is in epoch %d: %w", clip.Q(a.RunID), a.Epoch, r.Epoch, ErrConflict)
	}
	if len(a.Name) > MaxNameLen {
		return fmt.Errorf("append to run %s: name of %d bytes: %w", clip.Q(a.RunID), len(a.Name), ErrInvalid)
	}
	ak := recKey{a.RunID, a.Pos, a.Seq}
	taken := pl.appended[ak]
	if !taken {
		if taken, err = pl.t.hasRecord(a.RunID, r.Epoch, a.Pos, a.Seq); err != nil {
			return err
		}
	}
	if taken {
		return fmt.Errorf("append to run %s at %d.%d: %w", clip.Q(a.RunID), a.Pos, a.Seq, ErrConflict)
	}
	if pl.appended != nil {
		pl.appended[ak] = true
	}
	pl.p.appends = append(pl.p.appends, planAppend{a, r.Epoch})
	if r.Idle && !r.Queued {
		pl.touch(r).Idle = false // something may let it move
	}
	return nil
}

func (pl *planner) update(u Update) error {
	r, err := pl.live("update", u.RunID)
	if err != nil {
		return err
	}
	if u.Status != 0 && !u.Status.valid() {
		return fmt.Errorf("update run %s: status %d: %w", clip.Q(u.RunID), u.Status, ErrInvalid)
	}
	if u.ContinueAsNew && u.Status != 0 {
		return fmt.Errorf("update run %s: ContinueAsNew with a status: %w", clip.Q(u.RunID), ErrInvalid)
	}
	if len(u.Build) > MaxBuildLen {
		return fmt.Errorf("update run %q: build id of %d bytes, more than %d: %w", u.RunID, len(u.Build), MaxBuildLen, ErrInvalid)
	}
	n := pl.touch(r)
	if u.ContinueAsNew {
		n.Epoch++
		n.Input = u.Input
		n.Status, n.Output, n.Err, n.WakeAt = StatusRunning, nil, nil, time.Time{}
		n.Idle = false
	}
	if u.Status != 0 {
		if u.Status != n.Status {
			n.Idle = false
		}
		if u.Status != StatusRunning {
			n.Owner = "" // ownership ends with running
		}
		n.Status = u.Status
		switch {
		case u.Status == StatusCompleted:
			n.Output, n.Err = u.Output, nil
		case u.Status == StatusRunning:
			n.Err = nil
		default:
			n.Err = u.Err
		}
	}
	if u.SetWake {
		n.WakeAt = u.Wake
	}
	if n.Status.Terminal() {
		n.WakeAt = time.Time{}
	}
	if u.CancelRequested {
		n.CancelRequested = true
		n.Idle = false
	}
	if u.Idle && n.Status == StatusRunning && !n.CancelRequested {
		// A requested cancel is news, like a message: never idle.
		busy, err := pl.t.hasMessages(u.RunID)
		if err != nil {
			return err
		}
		n.Idle = !busy
	}
	if u.Build != "" {
		n.Builds = AddBuild(n.Builds, u.Build)
	}
	n.UpdatedAt = pl.now
	return nil
}

func (pl *planner) consume(k MessageKey) error {
	if _, err := pl.live("consume from", k.RunID); err != nil {
		return err
	}
	ok := !pl.consumed[k]
	if ok {
		var err error
		if ok, err = pl.t.hasMessage(k); err != nil {
			return err
		}
	}
	if !ok {
		return fmt.Errorf("consume message %d on %s of run %s: %w", k.Seq, clip.Q(k.Channel), clip.Q(k.RunID), ErrConflict)
	}
	if pl.consumed != nil {
		pl.consumed[k] = true
	}
	pl.p.consume = append(pl.p.consume, k)
	return nil
}

func (pl *planner) send(m *Message) error {
	r, err := pl.live("send to", m.RunID)
	if err != nil {
		return err
	}
	if r.Idle && !r.Queued { // a queued run waits for its admission, not for messages
		pl.touch(r).Idle = false
	}
	if err := checkChannel(m.Channel); err != nil {
		return fmt.Errorf("send to run %s: %w", clip.Q(m.RunID), err)
	}
	m.SentAt = pl.now
	pl.p.sends = append(pl.p.sends, m)
	return nil
}

func (pl *planner) delete(id string) error {
	r, err := pl.get(id)
	if err != nil || r == nil {
		return err
	}
	if !r.Status.Terminal() {
		return fmt.Errorf("delete run %s (%s): not finished: %w", clip.Q(id), r.Status, ErrInvalid)
	}
	pl.p.deletes = append(pl.p.deletes, r)
	return nil
}

func (p *plan) apply(t txn) error {
	for _, rp := range p.puts {
		if err := t.putRun(rp.old, rp.new); err != nil {
			return err
		}
	}
	for i := range p.appends {
		a := &p.appends[i]
		if err := t.putRecord(a.RunID, a.epoch, &a.Record); err != nil {
			return err
		}
	}
	for _, k := range p.consume {
		if err := t.deleteMessage(k); err != nil {
			return err
		}
	}
	for _, m := range p.sends {
		if err := t.putMessage(m); err != nil {
			return err
		}
	}
	for _, r := range p.deletes {
		if err := t.deleteRun(r); err != nil {
			return err
		}
	}
	return nil
}

// createPlan is the plan of [Store.CreateRun]: it returns the existing run,
// or a plan that creates r.
func createPlan(t txn, r Run, now time.Time) (existing *Run, p *plan, err error) {
	if err := checkNewRun(&r); err != nil {
		return nil, nil, err
	}
	old, err := t.getRun(r.ID)
	if err != nil || old != nil {
		return old, nil, err
	}
	if !r.CreatedAt.IsZero() {
		now = r.CreatedAt // the caller's clock
	}
	r.CreatedAt, r.UpdatedAt = normTime(now), normTime(now)
	r.Idle, r.Token = false, 0
	if r.Owner != "" {
		r.Token = 1
	}
	if err := newQueued(t, &r); err != nil {
		return nil, nil, err
	}
	return nil, &plan{puts: []runPut{{new: &r}}}, nil
}

// purgePlan removes up to limit expired items.
func purgePlan(t txn, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	items, err := t.expired(before, limit)
	if err != nil {
		return 0, err
	}
	for _, it := range items {
		if err := t.purge(it); err != nil {
			return 0, err
		}
	}
	return len(items), nil
}

func checkID(id string) error {
	if id == "" || len(id) > MaxIDLen || strings.IndexByte(id, 0) >= 0 {
		return fmt.Errorf("run id %s (%d bytes; want 1 to %d, no NUL byte): %w", clip.Q(id), len(id), MaxIDLen, ErrInvalid)
	}
	return nil
}

func checkChannel(ch string) error {
	if len(ch) > MaxChannelLen || strings.IndexByte(ch, 0) >= 0 {
		return fmt.Errorf("channel %s: longer than %d bytes or has a NUL byte: %w", clip.Q(ch), MaxChannelLen, ErrInvalid)
	}
	return nil
}

func checkNewRun(r *Run) error {
	if err := checkID(r.ID); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if r.Workflow == "" || len(r.Workflow) > MaxIDLen {
		return fmt.Errorf("create run %s: workflow name of %d bytes: %w", clip.Q(r.ID), len(r.Workflow), ErrInvalid)
	}
	if r.Status != StatusRunning {
		return fmt.Errorf("create run %s: status %s, want running: %w", clip.Q(r.ID), r.Status, ErrInvalid)
	}
	if len(r.Builds) > MaxBuilds {
		return fmt.Errorf("create run %q: %d builds, more than %d: %w", r.ID, len(r.Builds), MaxBuilds, ErrInvalid)
	}
	for _, b := range r.Builds {
		if len(b) > MaxBuildLen {
			return fmt.Errorf("create run %q: build id of %d bytes, more than %d: %w", r.ID, len(b), MaxBuildLen, ErrInvalid)
		}
	}
	if len(r.Meta) > MaxMetaLen {
		return fmt.Errorf("create run %s: meta of %d bytes, more than %d: %w", clip.Q(r.ID), len(r.Meta), MaxMetaLen, ErrInvalid)
	}
	return checkQueueFields(r)
}

// AddBuild returns builds with build added at the end, unless it is the
// last one already, keeping the first and the latest MaxBuilds-1. It
// never changes builds' array.
func AddBuild(builds []string, build string) []string {
	if n := len(builds); n > 0 && builds[n-1] == build {
		return builds
	}
	out := append(slices.Clip(builds), build)
	if len(out) > MaxBuilds {
		out = append(out[:1:1], out[len(out)-MaxBuilds+1:]...)
	}
	return out
}
