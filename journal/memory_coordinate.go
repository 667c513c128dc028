package journal

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// defaultMemoryLease is a Memory's [Lease] until [Memory.SetLease]: no
// timeouts, no polling. Engines on one Memory are in one process; they
// release their runs when they close, and notes are never lost. So a
// testing/synctest bubble whose runs all wait is idle (and a test
// blocked for ever is reported as a deadlock).
var defaultMemoryLease = Lease{}

// memEngine is a registered engine: its last heartbeat and where its notes
// go.
type memEngine struct {
	beat   time.Time
	notify func(Note)
}

// noteTo is a note on its way to one engine.
type noteTo struct {
	notify func(Note)
	note   Note
}

func deliver(notes []noteTo) {
	for _, n := range notes {
		n.notify(n.note)
	}
}

// SetLease sets the lease that [Memory.Register] hands out from now on
// and that engines are judged by. By default there is none (the zero
// Lease): engines never expire, and release their runs when they close.
// With a Timeout, an engine that stops heartbeating (a test that
// simulates a dead process) loses its runs to the others after Timeout;
// Poll defaults to Timeout/5 then. Leases are judged by time.Now, which a
// testing/synctest bubble fakes. Call it before engines register.
func (m *Memory) SetLease(l Lease) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l.Timeout > 0 && l.Poll <= 0 {
		l.Poll = l.Timeout / 5
	}
	m.lease = l
}

// live reports whether engine id is registered and not expired at now.
// The lock must be held.
func (m *Memory) live(id string, now time.Time) bool {
	en := m.engines[id]
	return en != nil && (m.lease.Timeout <= 0 || now.Sub(en.beat) <= m.lease.Timeout)
}

// checkFence checks a batch's fence. The write lock must be held.
func (m *Memory) checkFence(f Fence) error {
	if f.RunID == "" {
		return nil
	}
	mr := m.runs[f.RunID]
	if mr == nil {
		return fmt.Errorf("fenced commit to run %q: %w", f.RunID, ErrNotFound)
	}
	if mr.run.Owner != f.Owner || mr.run.Token != f.Token {
		return fmt.Errorf("fenced commit to run %q by engine %q (token %d): owned by %q (token %d): %w",
			f.RunID, f.Owner, f.Token, mr.run.Owner, mr.run.Token, ErrNotOwner)
	}
	return nil
}

// noteLocked adds a NoteWake for run r: to its owner if it has a
// registered one, else to every engine. The lock must be held.
func (m *Memory) noteLocked(notes []noteTo, r *Run) []noteTo {
	n := Note{Kind: NoteWake, RunID: r.ID, Workflow: r.Workflow, Owner: r.Owner}
	if en := m.engines[r.Owner]; r.Owner != "" && en != nil {
		return append(notes, noteTo{en.notify, n})
	}
	for _, en := range m.engines {
		notes = append(notes, noteTo{en.notify, n})
	}
	return notes
}

// batchNotes returns the notes an applied batch causes: for messages,
// cancel requests, unfenced appends and runs created unowned. A fenced
// batch that only appends to its own run (a step) causes none.
func (m *Memory) batchNotes(b *Batch) []noteTo {
	var notes []noteTo
	var seen map[string]bool
	add := func(id string) {
		if seen[id] {
			return
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[id] = true
		if mr := m.runs[id]; mr != nil && mr.run.Status == StatusRunning {
			notes = m.noteLocked(notes, &mr.run)
		}
	}
	for i := range b.Create {
		if b.Create[i].Owner == "" {
			add(b.Create[i].ID)
		}
	}
	for i := range b.Append {
		if id := b.Append[i].RunID; id != b.Fence.RunID {
			add(id)
		}
	}
	for i := range b.Update {
		if b.Update[i].CancelRequested {
			add(b.Update[i].RunID)
		}
	}
	for i := range b.Send {
		add(b.Send[i].RunID)
	}
	return notes
}

// Register implements [Coordinator.Register].
func (m *Memory) Register(ctx context.Context, id string, notify func(Note)) (Lease, error) {
	if err := checkID(id); err != nil {
		return Lease{}, fmt.Errorf("register engine: %w", err)
	}
	if notify == nil {
		return Lease{}, fmt.Errorf("register engine %q: nil notify: %w", id, ErrInvalid)
	}
	if err := m.write(ctx); err != nil {
		return Lease{}, err
	}
	defer m.mu.Unlock()
	now := time.Now()
	if m.live(id, now) {
		return Lease{}, fmt.Errorf("register engine %q: %w", id, ErrConflict)
	}
	m.engines[id] = &memEngine{beat: now, notify: notify}
	return m.lease, nil
}

// Heartbeat implements [Coordinator.Heartbeat].
func (m *Memory) Heartbeat(ctx context.Context, id string) error {
	if err := m.write(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := time.Now()
	en := m.engines[id]
	if en == nil {
		return fmt.Errorf("heartbeat of engine %q: not registered: %w", id, ErrLeaseExpired)
	}
	expired := !m.live(id, now)
	en.beat = now
	if expired {
		return fmt.Errorf("heartbeat of engine %q: %w", id, ErrLeaseExpired)
	}
	return nil
}

// Claim implements [Coordinator.Claim].
func (m *Memory) Claim(ctx context.Context, r ClaimRequest) (ClaimResult, error) {
	if r.Limit <= 0 || len(r.Workflows) == 0 {
		return ClaimResult{}, ctx.Err()
	}
	if err := m.write(ctx); err != nil {
		return ClaimResult{}, err
	}
	defer m.mu.Unlock()
	clock := time.Now()
	if !m.live(r.Engine, clock) {
		return ClaimResult{}, fmt.Errorf("claim by engine %q: %w", r.Engine, ErrLeaseExpired)
	}
	now := r.Now
	if now.IsZero() {
		now = clock
	}
	var res ClaimResult
	var ready []*memRun
	for _, mr := range m.runs {
		run := &mr.run
		if run.Status != StatusRunning || !slices.Contains(r.Workflows, run.Workflow) ||
			(run.Owner != "" && m.live(run.Owner, clock)) {
			continue
		}
		if run.Ready(now) {
			ready = append(ready, mr)
		} else if w := run.WakeAt; !w.IsZero() && (res.Next.IsZero() || w.Before(res.Next)) {
			res.Next = w
		}
	}
	slices.SortFunc(ready, func(a, b *memRun) int {
		if c := a.run.UpdatedAt.Compare(b.run.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.run.ID, b.run.ID)
	})
	for _, mr := range ready[:min(len(ready), r.Limit)] {
		mr.run.Owner = r.Engine
		mr.run.Token++
		res.Runs = append(res.Runs, cloneRun(&mr.run))
	}
	return res, nil
}

// Release implements [Coordinator.Release].
func (m *Memory) Release(ctx context.Context, runs []Fence) error {
	if err := m.write(ctx); err != nil {
		return err
	}
	now := time.Now()
	var notes []noteTo
	for _, f := range runs {
		mr := m.runs[f.RunID]
		if mr == nil || mr.run.Owner != f.Owner || mr.run.Token != f.Token || f.Owner == "" {
			continue
		}
		mr.run.Owner = ""
		if mr.run.Ready(now) {
			notes = m.noteLocked(notes, &mr.run)
		}
	}
	m.mu.Unlock()
	deliver(notes)
	return nil
}

// Unregister implements [Coordinator.Unregister].
func (m *Memory) Unregister(ctx context.Context, id string) error {
	if err := m.write(ctx); err != nil {
		return err
	}
	if m.engines[id] == nil {
		m.mu.Unlock()
		return nil
	}
	delete(m.engines, id)
	now := time.Now()
	var notes []noteTo
	for _, mr := range m.runs {
		if mr.run.Owner == id {
			mr.run.Owner = ""
			if mr.run.Ready(now) {
				notes = m.noteLocked(notes, &mr.run)
			}
		}
	}
	m.mu.Unlock()
	deliver(notes)
	return nil
}
