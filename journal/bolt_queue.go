package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The queue indexes of a Bolt journal (see [Queues]): three top-level
// buckets, created by the first write that needs them, so a journal that
// never used a queue is what older code wrote, and older files open as
// they are.
//
//	qwait:   queue 0 ^priority seq → run id   (waiting runs, admission order)
//	qactive: queue 0 run id → nil              (admitted running runs)
//	qdedup:  queue 0 key → run id              (dedup keys of unfinished runs)
//
// Queue names hold no 0 byte. The priority is stored so that higher
// priorities sort first; seq is qwait's bucket sequence, big-endian.
var (
	bucketQWait   = []byte("qwait")
	bucketQActive = []byte("qactive")
	bucketQDedup  = []byte("qdedup")
)

func queuePrefix(queue string) []byte { return append([]byte(queue), 0) }

func waitKey(r *Run) []byte {
	k := queuePrefix(r.Queue)
	k = binary.BigEndian.AppendUint32(k, ^(uint32(r.Priority) ^ 1<<31))
	return binary.BigEndian.AppendUint64(k, r.QueueSeq)
}

func (t *boltTxn) bucket(name []byte) (*bolt.Bucket, error) {
	return t.tx.CreateBucketIfNotExists(name)
}

// queueIndex moves run id's queue index entries from what old had to what
// r has (nil: none).
func (t *boltTxn) queueIndex(id string, old, r *Run) error {
	if (old == nil || (old.Queue == "" && old.DedupKey == "")) && (r == nil || (r.Queue == "" && r.DedupKey == "")) {
		return nil // the common case: no queue, no bucket touched
	}
	type entry struct {
		name     []byte
		had, has bool
		key      func(*Run) []byte
		val      []byte
	}
	for _, e := range []entry{
		{bucketQWait, IsWaiting(old), IsWaiting(r), waitKey, []byte(id)},
		{bucketQActive, IsActive(old), IsActive(r), func(x *Run) []byte { return append(queuePrefix(x.Queue), id...) }, nil},
		{bucketQDedup, HoldsKey(old), HoldsKey(r), func(x *Run) []byte { return append(queuePrefix(x.Queue), x.DedupKey...) }, []byte(id)},
	} {
		if !e.had && !e.has {
			continue
		}
		b, err := t.bucket(e.name)
		if err != nil {
			return err
		}
		if e.had {
			k := e.key(old)
			if v := b.Get(k); e.val == nil || bytes.Equal(v, []byte(id)) {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		if e.has {
			if err := b.Put(e.key(r), e.val); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *boltTxn) dedupHolder(queue, key string) (string, error) {
	b := t.tx.Bucket(bucketQDedup)
	if b == nil {
		return "", nil
	}
	return string(b.Get(append(queuePrefix(queue), key...))), nil
}

func (t *boltTxn) nextQueueSeq() (uint64, error) {
	b, err := t.bucket(bucketQWait)
	if err != nil {
		return 0, err
	}
	return b.NextSequence()
}

func (t *boltTxn) queueActive(queue string, max int) (int, error) {
	return countPrefix(t.tx.Bucket(bucketQActive), queuePrefix(queue), max), nil
}

// countPrefix counts the keys of b that start with prefix, up to max
// (0: all).
func countPrefix(b *bolt.Bucket, prefix []byte, max int) int {
	if b == nil {
		return 0
	}
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && (max <= 0 || n < max); k, _ = c.Next() {
		n++
	}
	return n
}

func (t *boltTxn) queueWaiting(queue string, fn func(string) (bool, error)) error {
	return eachWaiting(t.tx, queue, fn)
}

func eachWaiting(tx *bolt.Tx, queue string, fn func(string) (bool, error)) error {
	b := tx.Bucket(bucketQWait)
	if b == nil {
		return nil
	}
	p := queuePrefix(queue)
	c := b.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if more, err := fn(string(v)); err != nil || !more {
			return err
		}
	}
	return nil
}

var _ Queues = (*Bolt)(nil)

type admitReq struct {
	req  AdmitRequest
	runs []Run
}

// Admit implements [Queues.Admit]: one transaction of the group commit.
func (s *Bolt) Admit(ctx context.Context, r AdmitRequest) ([]Run, error) {
	if err := CheckQueueName(r.Queue); err != nil {
		return nil, fmt.Errorf("admit: %w", err)
	}
	if r.Now.IsZero() {
		r.Now = time.Now()
	}
	r.Now = normTime(r.Now)
	req := &commitReq{admit: &admitReq{req: r}}
	if err := s.submit(ctx, req); err != nil {
		return nil, err
	}
	return req.admit.runs, nil
}

// QueueStats implements [Queues.QueueStats].
func (s *Bolt) QueueStats(ctx context.Context, queue string) (st QueueStats, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		p := queuePrefix(queue)
		st.Active = countPrefix(tx.Bucket(bucketQActive), p, 0)
		st.Waiting = countPrefix(tx.Bucket(bucketQWait), p, 0)
		return nil
	})
	return st, err
}

// Waiting implements [Queues.Waiting].
func (s *Bolt) Waiting(ctx context.Context, queue string, limit int) (out []Run, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		return eachWaiting(tx, queue, func(id string) (bool, error) {
			v := runs.Get(key(id))
			if v == nil {
				return true, nil
			}
			r, err := decodeRun(id, v)
			if err != nil {
				return false, err
			}
			out = append(out, r)
			return limit <= 0 || len(out) < limit, nil
		})
	})
	return out, err
}

// QueuePosition implements [Queues.QueuePosition]: it counts the entries
// before r's.
func (s *Bolt) QueuePosition(ctx context.Context, r *Run) (pos int, err error) {
	if !IsWaiting(r) {
		return 0, nil
	}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQWait)
		if b == nil {
			return nil
		}
		mine := waitKey(r)
		if b.Get(mine) == nil {
			return nil // admitted meanwhile
		}
		p := queuePrefix(r.Queue)
		c := b.Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.Compare(k, mine) <= 0; k, _ = c.Next() {
			pos++
		}
		return nil
	})
	return pos, err
}

// QueueNames returns the names of the queues that have waiting or active
// runs in the journal, sorted: what a tool that does not have the
// application's Config (durable queues FILE) can list.
// Errors: [ErrClosed].
func (s *Bolt) QueueNames(ctx context.Context) (names []string, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		seen := map[string]bool{}
		for _, name := range [][]byte{bucketQWait, bucketQActive} {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			c := b.Cursor()
			for k, _ := c.First(); k != nil; {
				i := bytes.IndexByte(k, 0)
				if i < 0 {
					k, _ = c.Next()
					continue
				}
				q := string(k[:i])
				seen[q] = true
				k, _ = c.Seek(append([]byte(q), 1)) // past this queue's keys
			}
		}
		for q := range seen {
			names = append(names, q)
		}
		slices.Sort(names)
		return nil
	})
	return names, err
}
