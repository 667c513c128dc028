package journal

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/durable-go/durable/internal/clip"
)

// Memory is a [Store] that keeps everything in process memory: for tests
// and for workflows that need no durability. A commit is "durable" once
// Commit returns; nothing survives the process. Closing an engine that uses
// a Memory store leaves the store intact, so a new engine on the same store
// simulates a restart.
//
// The zero value is not usable; call [NewMemory]. A Memory is safe for
// concurrent use and works inside a testing/synctest bubble.
type Memory struct {
	mu     sync.RWMutex
	closed bool
	runs   map[string]*memRun
	ids    []string // sorted run ids, rebuilt when dirty
	dirty  bool
	hook   commitHook
	q      memQueues // queue indexes (memory_queue.go)

	// Coordination (memory_coordinate.go).
	lease   Lease
	engines map[string]*memEngine
}

// oldEpoch is an ended epoch's journal, kept until Purge.
type oldEpoch struct {
	ended   time.Time
	records []Record
}

type memRun struct {
	run     Run
	records []Record // the current epoch's, sorted by (Pos, Seq)
	old     map[uint32]oldEpoch
	inbox   map[string][]Message
	nextSeq uint64
}

var (
	_ Store       = (*Memory)(nil)
	_ Coordinator = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{runs: map[string]*memRun{}, lease: defaultMemoryLease, engines: map[string]*memEngine{}}
}

// read read-locks m; the caller unlocks with m.mu.RUnlock if err is nil.
func (m *Memory) read(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// write locks m; the caller unlocks with m.mu.Unlock if err is nil.
func (m *Memory) write(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// CreateRun implements [Store.CreateRun].
func (m *Memory) CreateRun(ctx context.Context, r Run) (Run, bool, error) {
	if err := m.write(ctx); err != nil {
		return Run{}, false, err
	}
	t := memTxn{m}
	start := time.Now()
	old, p, err := createPlan(t, r, start)
	if err != nil {
		m.mu.Unlock()
		return Run{}, false, err
	}
	if old != nil {
		c := cloneRun(old)
		m.mu.Unlock()
		return c, false, nil
	}
	if err := p.apply(t); err != nil {
		m.mu.Unlock()
		return Run{}, false, err
	}
	m.report(1, start, nil)
	c := cloneRun(&m.runs[r.ID].run)
	var notes []noteTo
	if c.Owner == "" {
		notes = m.noteLocked(notes, &c)
	}
	m.mu.Unlock()
	deliver(notes)
	return c, true, nil
}

// report passes a transaction's statistics to the CommitReporter hook.
func (m *Memory) report(ops int, start time.Time, err error) {
	if fn := m.hook.get(); fn != nil {
		fn(CommitStats{Commits: 1, Operations: ops, Duration: time.Since(start), Err: err})
	}
}

// Commit implements [Store.Commit].
func (m *Memory) Commit(ctx context.Context, b *Batch) error {
	if err := m.write(ctx); err != nil {
		return err
	}
	if err := m.checkFence(b.Fence); err != nil {
		m.mu.Unlock()
		return err
	}
	now := b.Now
	if now.IsZero() && b.NeedsNow() {
		now = time.Now()
	}
	var start time.Time
	if m.hook.fn.Load() != nil {
		start = time.Now()
	}
	t := memTxn{m}
	p, err := makePlan(t, b, now.Round(0))
	if err == nil {
		err = p.apply(t)
		if !start.IsZero() {
			m.report(b.Len(), start, err)
		}
	}
	var notes []noteTo
	if err == nil && len(m.engines) > 0 {
		notes = m.batchNotes(b)
	}
	m.mu.Unlock()
	deliver(notes)
	return err
}

// GetRun implements [Store.GetRun].
func (m *Memory) GetRun(ctx context.Context, id string) (Run, error) {
	if err := m.read(ctx); err != nil {
		return Run{}, err
	}
	defer m.mu.RUnlock()
	mr := m.runs[id]
	if mr == nil {
		return Run{}, fmt.Errorf("get run %s: %w", clip.Q(id), ErrNotFound)
	}
	return cloneRun(&mr.run), nil
}

// Records implements [Store.Records].
func (m *Memory) Records(ctx context.Context, id string) ([]Record, error) {
	if err := m.read(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	mr := m.runs[id]
	if mr == nil {
		return nil, fmt.Errorf("records of run %s: %w", clip.Q(id), ErrNotFound)
	}
	out := make([]Record, len(mr.records))
	for i, r := range mr.records {
		r.Data = bytes.Clone(r.Data)
		out[i] = r
	}
	return out, nil
}

// Load implements [Store.Load].
func (m *Memory) Load(ctx context.Context, id string) (Loaded, error) {
	if err := m.read(ctx); err != nil {
		return Loaded{}, err
	}
	defer m.mu.RUnlock()
	mr := m.runs[id]
	if mr == nil {
		return Loaded{}, fmt.Errorf("load run %s: %w", clip.Q(id), ErrNotFound)
	}
	l := Loaded{Run: cloneRun(&mr.run), HasMessages: len(mr.inbox) > 0}
	if !mr.run.Status.Terminal() {
		l.Records = make([]Record, len(mr.records))
		for i, r := range mr.records {
			r.Data = bytes.Clone(r.Data)
			l.Records[i] = r
		}
	}
	return l, nil
}

// ListRuns implements [Store.ListRuns].
func (m *Memory) ListRuns(ctx context.Context, f Filter) ([]Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock() // may rebuild the sorted ids
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if m.dirty {
		m.ids = m.ids[:0]
		for id := range m.runs {
			m.ids = append(m.ids, id)
		}
		slices.Sort(m.ids)
		m.dirty = false
	}
	var out []Run
	start := sort.SearchStrings(m.ids, f.After)
	for _, id := range m.ids[start:] {
		if r := &m.runs[id].run; f.match(r) {
			out = append(out, cloneRun(r))
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out, nil
}

// Messages implements [Store.Messages].
func (m *Memory) Messages(ctx context.Context, id, channel string, limit int) ([]Message, error) {
	if err := m.read(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	mr := m.runs[id]
	if mr == nil {
		return nil, fmt.Errorf("messages of run %s: %w", clip.Q(id), ErrNotFound)
	}
	q := mr.inbox[channel]
	if limit > 0 && len(q) > limit {
		q = q[:limit]
	}
	out := make([]Message, len(q))
	for i, msg := range q {
		msg.Data = bytes.Clone(msg.Data)
		out[i] = msg
	}
	return out, nil
}

// Timers implements [Store.Timers].
func (m *Memory) Timers(ctx context.Context, until time.Time, limit int) ([]Timer, error) {
	if err := m.read(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	var out []Timer
	for id, mr := range m.runs {
		if w := mr.run.WakeAt; !w.IsZero() && !w.After(until) {
			out = append(out, Timer{At: w, RunID: id})
		}
	}
	slices.SortFunc(out, func(a, b Timer) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.RunID, b.RunID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Close implements [Store.Close]. The contents are dropped.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.runs = nil
	m.ids = nil
	m.engines = nil
	m.q = memQueues{}
	return nil
}

func cloneRun(r *Run) Run {
	c := *r
	c.Input = bytes.Clone(r.Input)
	c.Output = bytes.Clone(r.Output)
	c.Err = bytes.Clone(r.Err)
	c.Meta = bytes.Clone(r.Meta)
	c.Builds = slices.Clone(r.Builds)
	return c
}

// memTxn applies plans to a Memory whose write lock is held.
type memTxn struct{ m *Memory }

// getRun returns the stored run itself, not a copy: plans only read it
// (they change copies), and putRun reads old before it replaces it.
func (t memTxn) getRun(id string) (*Run, error) {
	mr := t.m.runs[id]
	if mr == nil {
		return nil, nil
	}
	return &mr.run, nil
}

func (t memTxn) putRun(old, r *Run) error {
	mr := t.m.runs[r.ID]
	if mr == nil {
		mr = &memRun{inbox: map[string][]Message{}}
		t.m.runs[r.ID] = mr
		t.m.dirty = true
	}
	if old != nil && r.Epoch != old.Epoch {
		if mr.old == nil {
			mr.old = map[uint32]oldEpoch{}
		}
		mr.old[old.Epoch] = oldEpoch{ended: r.UpdatedAt, records: mr.records}
		mr.records = nil
	}
	var prev *Run
	if old != nil {
		p := mr.run // old may be the stored run itself: keep what it was
		prev = &p
	}
	mr.run = cloneRun(r)
	for _, p := range []*time.Time{&mr.run.CreatedAt, &mr.run.UpdatedAt, &mr.run.WakeAt, &mr.run.Deadline} {
		*p = normTime(*p)
	}
	t.m.q.update(r.ID, prev, &mr.run)
	return nil
}

func (t memTxn) find(id string, pos, seq uint32) (*memRun, int, bool) {
	mr := t.m.runs[id]
	if mr == nil {
		return nil, 0, false
	}
	if n := len(mr.records); n == 0 || mr.records[n-1].Pos < pos || (mr.records[n-1].Pos == pos && mr.records[n-1].Seq < seq) {
		return mr, n, false // appending in order, the common case
	}
	i, ok := slices.BinarySearchFunc(mr.records, [2]uint32{pos, seq}, func(r Record, k [2]uint32) int {
		if r.Pos != k[0] {
			return cmp.Compare(r.Pos, k[0])
		}
		return cmp.Compare(r.Seq, k[1])
	})
	return mr, i, ok
}

func (t memTxn) hasRecord(id string, _, pos, seq uint32) (bool, error) {
	_, _, ok := t.find(id, pos, seq)
	return ok, nil
}

func (t memTxn) putRecord(id string, _ uint32, r *Record) error {
	mr, i, _ := t.find(id, r.Pos, r.Seq)
	c := *r
	c.Data = bytes.Clone(r.Data)
	c.Time = normTime(c.Time)
	if i == len(mr.records) {
		mr.records = append(mr.records, c)
	} else {
		mr.records = slices.Insert(mr.records, i, c)
	}
	return nil
}

func (t memTxn) hasMessage(k MessageKey) (bool, error) {
	mr := t.m.runs[k.RunID]
	if mr == nil {
		return false, nil
	}
	for _, msg := range mr.inbox[k.Channel] {
		if msg.Seq == k.Seq {
			return true, nil
		}
	}
	return false, nil
}

func (t memTxn) hasMessages(id string) (bool, error) {
	mr := t.m.runs[id]
	return mr != nil && len(mr.inbox) > 0, nil
}

func (t memTxn) deleteMessage(k MessageKey) error {
	mr := t.m.runs[k.RunID]
	q := mr.inbox[k.Channel]
	for i, msg := range q {
		if msg.Seq == k.Seq {
			q = slices.Delete(q, i, i+1)
			break
		}
	}
	if len(q) == 0 {
		delete(mr.inbox, k.Channel)
	} else {
		mr.inbox[k.Channel] = q
	}
	return nil
}

func (t memTxn) putMessage(m *Message) error {
	mr := t.m.runs[m.RunID]
	mr.nextSeq++
	m.Seq = mr.nextSeq
	c := *m
	c.Data = bytes.Clone(m.Data)
	c.SentAt = normTime(c.SentAt)
	mr.inbox[m.Channel] = append(mr.inbox[m.Channel], c)
	return nil
}

func (t memTxn) deleteRun(r *Run) error {
	if mr := t.m.runs[r.ID]; mr != nil {
		t.m.q.update(r.ID, &mr.run, nil)
	}
	delete(t.m.runs, r.ID)
	t.m.dirty = true
	return nil
}

func (t memTxn) expired(before time.Time, limit int) ([]expiry, error) {
	var out []expiry
	for id, mr := range t.m.runs {
		if mr.run.Status.Terminal() && mr.run.UpdatedAt.Before(before) {
			out = append(out, expiry{At: mr.run.UpdatedAt, RunID: id, Run: true})
		}
		for epoch, o := range mr.old {
			if o.ended.Before(before) {
				out = append(out, expiry{At: o.ended, RunID: id, Epoch: epoch})
			}
		}
	}
	slices.SortFunc(out, func(a, b expiry) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.RunID, b.RunID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (t memTxn) purge(e expiry) error {
	mr := t.m.runs[e.RunID]
	if mr == nil {
		return nil
	}
	if e.Run {
		return t.deleteRun(&mr.run)
	}
	delete(mr.old, e.Epoch)
	return nil
}

// Purge implements [Store.Purge].
func (m *Memory) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := m.write(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	return purgePlan(memTxn{m}, before, limit)
}
