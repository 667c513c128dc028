package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/durable-go/durable/internal/clip"
)

// Bolt is a [Store] in one bbolt file. Every commit is fsynced before
// [Bolt.Commit] returns; commits that arrive while one is being written are
// coalesced into the next bbolt transaction (group commit), so throughput
// grows with the number of concurrent writers while a lone writer never
// waits for a batch to fill.
//
// Open one with [OpenBolt]. A Bolt is safe for concurrent use. Damaged
// data is reported as [ErrCorrupt] and never panics: bbolt's own panics and
// memory faults on a damaged file are contained and turned into errors.
type Bolt struct {
	db   *bolt.DB
	path string
	opts BoltOptions

	mu       sync.RWMutex // guards closed
	closed   bool
	cq       commitQueue
	stats    commitStats
	inflight sync.WaitGroup // commits under way (Close waits for them)
	hook     commitHook
	linkFile *os.File // the journal file, opened read-only: see checkLinked
}

var _ Store = (*Bolt)(nil)

// Bucket names. Top-level buckets; "records" and "inbox" hold one nested
// bucket per run, named by the run id.
var (
	bucketMeta    = []byte("durable")
	bucketRuns    = []byte("runs")
	bucketStatus  = []byte("status")
	bucketWake    = []byte("wake")
	bucketRecords = []byte("records")
	bucketInbox   = []byte("inbox")
	bucketExpire  = []byte("expire")

	keyFormat     = []byte("format")
	keyVersion    = []byte("version")
	formatMarker  = []byte("durable-journal")
	allBuckets    = [][]byte{bucketMeta, bucketRuns, bucketStatus, bucketWake, bucketRecords, bucketInbox, bucketExpire}
	fileFormatVer = byte(1)
)

// CreateRun implements [Store.CreateRun].
func (s *Bolt) CreateRun(ctx context.Context, r Run) (Run, bool, error) {
	req := &commitReq{create: &r}
	if err := s.submit(ctx, req); err != nil {
		return Run{}, false, err
	}
	if req.existing != nil {
		return *req.existing, false, nil
	}
	return *req.created, true, nil
}

// Commit implements [Store.Commit].
func (s *Bolt) Commit(ctx context.Context, b *Batch) error {
	return s.submit(ctx, &commitReq{batch: b})
}

// GetRun implements [Store.GetRun].
func (s *Bolt) GetRun(ctx context.Context, id string) (r Run, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get(key(id))
		if v == nil {
			return fmt.Errorf("get run %s: %w", clip.Q(id), ErrNotFound)
		}
		r, err = decodeRun(id, v)
		return err
	})
	return r, err
}

// Records implements [Store.Records].
func (s *Bolt) Records(ctx context.Context, id string) (out []Record, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get(key(id))
		if v == nil {
			return fmt.Errorf("records of run %s: %w", clip.Q(id), ErrNotFound)
		}
		r, err := decodeRun(id, v)
		if err != nil {
			return err
		}
		out, err = readRecords(tx, id, r.Epoch)
		return err
	})
	return out, err
}

// Load implements [Store.Load].
func (s *Bolt) Load(ctx context.Context, id string) (l Loaded, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get(key(id))
		if v == nil {
			return fmt.Errorf("load run %s: %w", clip.Q(id), ErrNotFound)
		}
		if l.Run, err = decodeRun(id, v); err != nil {
			return err
		}
		if in := tx.Bucket(bucketInbox).Bucket(key(id)); in != nil {
			k, _ := in.Cursor().First()
			l.HasMessages = k != nil
		}
		if l.Run.Status.Terminal() {
			return nil
		}
		l.Records, err = readRecords(tx, id, l.Run.Epoch)
		return err
	})
	return l, err
}

// readRecords decodes the records of one epoch of a run. A first pass
// over the keys sizes the result and one buffer for all the records' data;
// step names that repeat (a loop of one step) share one string. Replaying
// a run so allocates a handful of times, not several times per record.
func readRecords(tx *bolt.Tx, id string, epoch uint32) ([]Record, error) {
	b := tx.Bucket(bucketRecords).Bucket(recordsBucket(id, epoch))
	if b == nil {
		return nil, nil
	}
	n, size := 0, 0
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n++
		size += len(v)
	}
	out := make([]Record, 0, n)
	arena := make([]byte, 0, size)
	var prev string
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, err := decodeRecordAfter(id, k, v, prev, &arena)
		if err != nil {
			return nil, err
		}
		prev = r.Name
		out = append(out, r)
	}
	return out, nil
}

// ListRuns implements [Store.ListRuns]. With a Status it walks the status
// index; otherwise every run.
func (s *Bolt) ListRuns(ctx context.Context, f Filter) (out []Run, err error) {
	var damaged []string // descriptions
	var firstID string
	err = s.view(ctx, func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		add := func(id []byte, v []byte) (bool, error) {
			if v == nil {
				if v = runs.Get(id); v == nil {
					if firstID == "" {
						firstID = string(id)
					}
					damaged = append(damaged, fmt.Sprintf("%q (status index entry of a missing run)", id))
					return false, nil
				}
			}
			r, err := decodeRun(string(id), v)
			if err != nil {
				if firstID == "" {
					firstID = string(id)
				}
				damaged = append(damaged, fmt.Sprintf("%q (%v)", id, err))
				return false, nil
			}
			if !f.match(&r) {
				return false, nil
			}
			out = append(out, r)
			return f.Limit > 0 && len(out) >= f.Limit, nil
		}
		if f.Status != 0 {
			prefix := []byte{byte(f.Status)}
			c := tx.Bucket(bucketStatus).Cursor()
			seek := append(prefix, f.After...)
			for k, _ := c.Seek(seek); k != nil && k[0] == prefix[0]; k, _ = c.Next() {
				id := k[1:]
				if string(id) <= f.After {
					continue
				}
				if stop, err := add(id, nil); err != nil || stop {
					return err
				}
			}
			return nil
		}
		c := runs.Cursor()
		for k, v := c.Seek([]byte(f.After)); k != nil; k, v = c.Next() {
			if string(k) <= f.After {
				continue
			}
			if stop, err := add(k, v); err != nil || stop {
				return err
			}
		}
		return nil
	})
	if err == nil && len(damaged) > 0 {
		err = &CorruptError{Path: s.path, RunID: firstID, What: "runs", Reason: fmt.Sprintf("%d run(s) left out: %s", len(damaged), strings.Join(damaged, "; "))}
	}
	return out, err
}

// Messages implements [Store.Messages].
func (s *Bolt) Messages(ctx context.Context, id, channel string, limit int) (out []Message, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRuns).Get(key(id)) == nil {
			return fmt.Errorf("messages of run %s: %w", clip.Q(id), ErrNotFound)
		}
		b := tx.Bucket(bucketInbox).Bucket(key(id))
		if b == nil {
			return nil
		}
		prefix := append([]byte(channel), 0)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, v = c.Next() {
			m, err := decodeMessage(id, k, v)
			if err != nil {
				return err
			}
			out = append(out, m)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// Timers implements [Store.Timers].
func (s *Bolt) Timers(ctx context.Context, until time.Time, limit int) (out []Timer, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		end := wakeKey(until, "")
		c := tx.Bucket(bucketWake).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], end[:8]) <= 0; k, _ = c.Next() {
			if len(k) < 8 {
				return corruptf("", "wake index", "key of %d bytes", len(k))
			}
			out = append(out, Timer{At: fromUnixNano(int64(binary.BigEndian.Uint64(k[:8]) ^ 1<<63)), RunID: string(k[8:])})
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// Path returns the file the store was opened on.
func (s *Bolt) Path() string { return s.path }

// Close implements [Store.Close]: it waits for the commits under way to
// finish, then closes the file.
func (s *Bolt) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	if s.linkFile != nil {
		s.linkFile.Close()
	}
	return s.db.Close()
}

// view runs fn in a read transaction, containing panics and memory faults
// that a damaged file can cause in bbolt.
func (s *Bolt) view(ctx context.Context, fn func(*bolt.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.withPath(guard(s.path, func() error { return s.db.View(fn) }))
}

// withPath sets the file name in a *CorruptError that lacks it.
func (s *Bolt) withPath(err error) error {
	var ce *CorruptError
	if errors.As(err, &ce) && ce.Path == "" {
		ce.Path = s.path
	}
	return err
}

// wakeKey orders wake-index entries by time: the Unix nanoseconds with the
// sign bit flipped (so negative times sort first), then the run id.
func wakeKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(unixNano(t))^1<<63)
	return append(k, id...)
}

func statusKey(s Status, id string) []byte {
	return append([]byte{byte(s)}, id...)
}

// key gives a string's bytes without copying them, for bbolt calls: bbolt
// copies every key it keeps (Put, CreateBucket) and only reads the others,
// and nothing here writes to the result.
func key(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// recordsBucket names the bucket of a run's records in one epoch: the run
// id for epoch 0, then the id, a 0 byte and the big-endian epoch. Run ids
// have no 0 byte, so the buckets of one run sort together after its id.
func recordsBucket(id string, epoch uint32) []byte {
	if epoch == 0 {
		return key(id)
	}
	return binary.BigEndian.AppendUint32(append([]byte(id), 0), epoch)
}

// expireKey orders the expiry index by time: the time as in wakeKey, 'r'
// (a finished run) or 'e' (an ended epoch), the epoch, then the run id.
func expireKey(e expiry) []byte {
	k := make([]byte, 13, 13+len(e.RunID))
	binary.BigEndian.PutUint64(k, uint64(unixNano(e.At))^1<<63)
	k[8] = 'e'
	if e.Run {
		k[8] = 'r'
	}
	binary.BigEndian.PutUint32(k[9:13], e.Epoch)
	return append(k, e.RunID...)
}

func parseExpireKey(k []byte) (expiry, bool) {
	if len(k) < 14 || (k[8] != 'r' && k[8] != 'e') {
		return expiry{}, false
	}
	return expiry{
		At:    fromUnixNano(int64(binary.BigEndian.Uint64(k[:8]) ^ 1<<63)),
		Run:   k[8] == 'r',
		Epoch: binary.BigEndian.Uint32(k[9:13]),
		RunID: string(k[13:]),
	}, true
}

// boltTxn applies plans inside a bbolt write transaction. It keeps the
// runs it has decoded, so a group of commits to one run decodes its stored
// state once per transaction, not once per commit.
type boltTxn struct {
	tx      *bolt.Tx
	runs    map[string]*Run // decoded or written in this transaction; nil: deleted
	written int             // bytes of values put, for CommitStats
}

func newBoltTxn(tx *bolt.Tx) *boltTxn { return &boltTxn{tx: tx, runs: map[string]*Run{}} }

// getRun returns the run, shared with the cache: plans only read it.
func (t *boltTxn) getRun(id string) (*Run, error) {
	if r, ok := t.runs[id]; ok {
		return r, nil
	}
	v := t.tx.Bucket(bucketRuns).Get(key(id))
	if v == nil {
		return nil, nil
	}
	r, err := decodeRun(id, v)
	if err != nil {
		return nil, err
	}
	t.runs[id] = &r
	return &r, nil
}

func (t *boltTxn) putRun(old, r *Run) error {
	if err := t.queueIndex(r.ID, old, r); err != nil {
		return err
	}
	t.runs[r.ID] = r
	v := encodeRun(r)
	t.written += len(v)
	if err := t.tx.Bucket(bucketRuns).Put(key(r.ID), v); err != nil {
		return err
	}
	st := t.tx.Bucket(bucketStatus)
	if old == nil || old.Status != r.Status {
		if old != nil {
			if err := st.Delete(statusKey(old.Status, old.ID)); err != nil {
				return err
			}
		}
		if err := st.Put(statusKey(r.Status, r.ID), nil); err != nil {
			return err
		}
	}
	if r.Status.Terminal() && (old == nil || !old.Status.Terminal()) {
		if err := t.tx.Bucket(bucketExpire).Put(expireKey(expiry{At: r.UpdatedAt, RunID: r.ID, Run: true}), nil); err != nil {
			return err
		}
	}
	if old != nil && old.Epoch != r.Epoch {
		if err := t.tx.Bucket(bucketExpire).Put(expireKey(expiry{At: r.UpdatedAt, RunID: r.ID, Epoch: old.Epoch}), nil); err != nil {
			return err
		}
	}
	var oldWake time.Time
	if old != nil {
		oldWake = old.WakeAt
	}
	if !oldWake.Equal(r.WakeAt) {
		w := t.tx.Bucket(bucketWake)
		if !oldWake.IsZero() {
			if err := w.Delete(wakeKey(oldWake, r.ID)); err != nil {
				return err
			}
		}
		if !r.WakeAt.IsZero() {
			if err := w.Put(wakeKey(r.WakeAt, r.ID), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *boltTxn) hasRecord(id string, epoch, pos, seq uint32) (bool, error) {
	b := t.tx.Bucket(bucketRecords).Bucket(recordsBucket(id, epoch))
	if b == nil {
		return false, nil
	}
	k := recordKey(pos, seq)
	return b.Get(k[:]) != nil, nil
}

func (t *boltTxn) putRecord(id string, epoch uint32, r *Record) error {
	b, err := t.tx.Bucket(bucketRecords).CreateBucketIfNotExists(recordsBucket(id, epoch))
	if err != nil {
		return err
	}
	k := recordKey(r.Pos, r.Seq)
	v := encodeRecord(id, r)
	t.written += len(v)
	return b.Put(k[:], v)
}

func (t *boltTxn) hasMessage(k MessageKey) (bool, error) {
	b := t.tx.Bucket(bucketInbox).Bucket(key(k.RunID))
	return b != nil && b.Get(messageKey(k.Channel, k.Seq)) != nil, nil
}

func (t *boltTxn) hasMessages(id string) (bool, error) {
	b := t.tx.Bucket(bucketInbox).Bucket(key(id))
	if b == nil {
		return false, nil
	}
	k, _ := b.Cursor().First()
	return k != nil, nil
}

func (t *boltTxn) deleteMessage(k MessageKey) error {
	return t.tx.Bucket(bucketInbox).Bucket(key(k.RunID)).Delete(messageKey(k.Channel, k.Seq))
}

func (t *boltTxn) putMessage(m *Message) error {
	b, err := t.tx.Bucket(bucketInbox).CreateBucketIfNotExists(key(m.RunID))
	if err != nil {
		return err
	}
	if m.Seq, err = b.NextSequence(); err != nil {
		return err
	}
	v := encodeMessage(m)
	t.written += len(v)
	return b.Put(messageKey(m.Channel, m.Seq), v)
}

func (t *boltTxn) deleteRun(r *Run) error {
	if err := t.queueIndex(r.ID, r, nil); err != nil {
		return err
	}
	t.runs[r.ID] = nil
	id := key(r.ID)
	if err := t.tx.Bucket(bucketRuns).Delete(id); err != nil {
		return err
	}
	if err := t.tx.Bucket(bucketStatus).Delete(statusKey(r.Status, r.ID)); err != nil {
		return err
	}
	if !r.WakeAt.IsZero() {
		if err := t.tx.Bucket(bucketWake).Delete(wakeKey(r.WakeAt, r.ID)); err != nil {
			return err
		}
	}
	if err := deleteBucket(t.tx.Bucket(bucketInbox), id); err != nil {
		return err
	}
	// The records of every epoch: the bucket named id, then id+0+epoch.
	recs := t.tx.Bucket(bucketRecords)
	if err := deleteBucket(recs, id); err != nil {
		return err
	}
	prefix := append([]byte(r.ID), 0)
	var names [][]byte
	c := recs.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		names = append(names, bytes.Clone(k))
	}
	for _, name := range names {
		if err := deleteBucket(recs, name); err != nil {
			return err
		}
	}
	return nil
}

func deleteBucket(parent *bolt.Bucket, name []byte) error {
	if err := parent.DeleteBucket(name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	return nil
}

func (t *boltTxn) expired(before time.Time, limit int) ([]expiry, error) {
	var out []expiry
	end := uint64(unixNano(before)) ^ 1<<63
	c := t.tx.Bucket(bucketExpire).Cursor()
	for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
		e, ok := parseExpireKey(k)
		if !ok {
			return nil, corruptf("", "expiry index", "malformed key %x", k)
		}
		if binary.BigEndian.Uint64(k[:8]) >= end {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

func (t *boltTxn) purge(e expiry) error {
	if err := t.tx.Bucket(bucketExpire).Delete(expireKey(e)); err != nil {
		return err
	}
	if !e.Run {
		return deleteBucket(t.tx.Bucket(bucketRecords), recordsBucket(e.RunID, e.Epoch))
	}
	r, err := t.getRun(e.RunID)
	if err != nil || r == nil || !r.Status.Terminal() {
		return err // gone already (or not finished: a stale entry)
	}
	return t.deleteRun(r)
}
