package journal

import (
	"context"
	"slices"
	"time"
)

// memQueues are a Memory's queue indexes (see [Queues]), kept by
// memTxn.putRun and deleteRun.
type memQueues struct {
	waiting map[string]map[string]*Run // queue → id → the stored run
	active  map[string]map[string]bool // queue → ids
	dedup   map[string]string          // dedupKey(queue, key) → id
	seq     uint64
}

// update moves run id's index entries from what old had to what r has
// (nil: none).
func (q *memQueues) update(id string, old, r *Run) {
	if old == nil && r == nil {
		return
	}
	if (old == nil || (old.Queue == "" && old.DedupKey == "")) && (r == nil || (r.Queue == "" && r.DedupKey == "")) {
		return // the common case: no queue
	}
	if q.waiting == nil {
		q.waiting, q.active, q.dedup = map[string]map[string]*Run{}, map[string]map[string]bool{}, map[string]string{}
	}
	if IsWaiting(old) {
		delete(q.waiting[old.Queue], id)
	}
	if IsActive(old) {
		delete(q.active[old.Queue], id)
	}
	if HoldsKey(old) && q.dedup[dedupKey(old.Queue, old.DedupKey)] == id {
		delete(q.dedup, dedupKey(old.Queue, old.DedupKey))
	}
	if IsWaiting(r) {
		if q.waiting[r.Queue] == nil {
			q.waiting[r.Queue] = map[string]*Run{}
		}
		q.waiting[r.Queue][id] = r
	}
	if IsActive(r) {
		if q.active[r.Queue] == nil {
			q.active[r.Queue] = map[string]bool{}
		}
		q.active[r.Queue][id] = true
	}
	if HoldsKey(r) {
		q.dedup[dedupKey(r.Queue, r.DedupKey)] = id
	}
}

// ordered returns queue's waiting runs in admission order.
func (q *memQueues) ordered(queue string) []*Run {
	w := q.waiting[queue]
	out := make([]*Run, 0, len(w))
	for _, r := range w {
		out = append(out, r)
	}
	slices.SortFunc(out, queueLess)
	return out
}

func (t memTxn) dedupHolder(queue, key string) (string, error) {
	return t.m.q.dedup[dedupKey(queue, key)], nil
}

func (t memTxn) nextQueueSeq() (uint64, error) {
	t.m.q.seq++
	return t.m.q.seq, nil
}

func (t memTxn) queueActive(queue string, _ int) (int, error) {
	return len(t.m.q.active[queue]), nil
}

func (t memTxn) queueWaiting(queue string, fn func(string) (bool, error)) error {
	for _, r := range t.m.q.ordered(queue) {
		if more, err := fn(r.ID); err != nil || !more {
			return err
		}
	}
	return nil
}

var _ Queues = (*Memory)(nil)

// Admit implements [Queues.Admit].
func (m *Memory) Admit(ctx context.Context, r AdmitRequest) ([]Run, error) {
	if err := m.write(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	return admitPlan(memTxn{m}, r, normTime(now), true)
}

// QueueStats implements [Queues.QueueStats].
func (m *Memory) QueueStats(ctx context.Context, queue string) (QueueStats, error) {
	if err := m.read(ctx); err != nil {
		return QueueStats{}, err
	}
	defer m.mu.RUnlock()
	return QueueStats{Active: len(m.q.active[queue]), Waiting: len(m.q.waiting[queue])}, nil
}

// Waiting implements [Queues.Waiting].
func (m *Memory) Waiting(ctx context.Context, queue string, limit int) ([]Run, error) {
	if err := m.read(ctx); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	rs := m.q.ordered(queue)
	if limit > 0 && len(rs) > limit {
		rs = rs[:limit]
	}
	out := make([]Run, len(rs))
	for i, r := range rs {
		out[i] = cloneRun(r)
	}
	return out, nil
}

// QueuePosition implements [Queues.QueuePosition].
func (m *Memory) QueuePosition(ctx context.Context, r *Run) (int, error) {
	if err := m.read(ctx); err != nil {
		return 0, err
	}
	defer m.mu.RUnlock()
	if !IsWaiting(r) || m.q.waiting[r.Queue][r.ID] == nil {
		return 0, nil
	}
	pos := 1
	for _, o := range m.q.waiting[r.Queue] {
		if o.ID != r.ID && queueLess(o, r) < 0 {
			pos++
		}
	}
	return pos, nil
}
