package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Report is what [Bolt.Verify] found in a journal. Counts include damaged
// items. The zero value is an empty report.
type Report struct {
	Runs     int            // every stored run, readable or not
	ByStatus map[Status]int // readable runs, by status
	Epochs   int            // record journals: one per run and epoch kept
	Records  int            // records of every epoch
	Messages int            // messages waiting in inboxes
	Timers   int            // entries of the wake-time index
	// Problems lists what is wrong, in the order Verify found it: runs,
	// the status index, the wake index, records, inboxes, the expiry
	// index.
	Problems []Problem
}

// OK reports whether r lists no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Problem is one thing [Bolt.Verify] found wrong.
type Problem struct {
	// RunID is the run the damaged item belongs to; "" if none is known.
	RunID string
	// What names the item: "run" (the run's own value), "record P.S" (a
	// record of the run's current epoch), "record P.S of ended epoch E",
	// "record P.S of epoch E" (a run that cannot be read),
	// "message N on channel C", "status index", "wake index", "records"
	// or "inbox" (a run's record or message bucket as a whole),
	// "expiry index", or "file" (bbolt could not read part of the file).
	What string
	// Detail says what is wrong: "checksum mismatch (...)", "entry for a
	// run that does not exist", ...
	Detail string
}

// String formats p on one line: `run "x" record 3.0: checksum mismatch`.
func (p Problem) String() string {
	s := p.What
	if p.RunID != "" {
		s = "run " + strconv.Quote(p.RunID) + " " + s
	}
	return s + ": " + p.Detail
}

// Verify reads the whole journal and checks it: every run, every record of
// every epoch and every inbox message against its checksum and format, and
// the indexes against the runs (each run has one status index entry, under
// its status; the wake index holds exactly the runs' wake times; no record
// journal or inbox belongs to a missing run). It reads in one transaction,
// so it sees one consistent state of the file, and may be called on a
// store that is in use, read-only or not.
//
// Damage is reported in the Report, not as an error: bbolt panics and
// memory faults caused by a damaged file are contained and listed as
// problems, of the run whose records or inbox could not be read, or with
// What "file" (the counts are then partial). Verify never panics.
// Errors: [ErrClosed], or the context's error.
func (s *Bolt) Verify(ctx context.Context) (Report, error) {
	v := &verifier{ctx: ctx, path: s.path, rep: Report{ByStatus: map[Status]int{}}, runs: map[string]*runFacts{}}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v.tx = tx
		for _, sec := range []struct {
			name string
			fn   func() error
		}{
			{"runs", v.checkRuns},
			{"status index", v.checkStatusIndex},
			{"wake index", v.checkWakeIndex},
			{"records", v.checkRecords},
			{"inboxes", v.checkInboxes},
			{"expiry index", v.checkExpiry},
		} {
			if err := v.section(sec.name, sec.fn); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		var ce *CorruptError
		if !errors.As(err, &ce) {
			return v.rep, err // ErrClosed, or ctx's error
		}
		v.problem("", "file", "%s", ce.Reason)
	}
	return v.rep, nil
}

// runFacts is what Verify remembers of a run to check the indexes.
type runFacts struct {
	damaged     bool // the run's value does not decode
	problem     int  // if damaged, the index of its problem in the report
	status      Status
	epoch       uint32
	wake        time.Time
	statusEntry bool // seen in the status index under status
	wakeEntry   bool // seen in the wake index at wake
}

type verifier struct {
	ctx  context.Context
	path string
	tx   *bolt.Tx
	rep  Report
	runs map[string]*runFacts
	ids  []string // run ids in key order
	// allRuns is set once every run was read: only then is an index
	// entry of an unknown run a problem.
	allRuns bool
	n       int   // items visited, for context checks
	err     error // the context's error, once seen
}

// errStop ends a walk early when the context is done.
var errStop = errors.New("journal: verify stopped")

func (v *verifier) problem(runID, what, format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, Problem{RunID: runID, What: what, Detail: fmt.Sprintf(format, args...)})
}

// damaged records a decode error as a problem, under what if it is given.
func (v *verifier) damaged(runID, what string, err error) {
	var ce *CorruptError
	if errors.As(err, &ce) {
		if what == "" {
			what = ce.What
		}
		v.problem(runID, what, "%s", ce.Reason)
		return
	}
	v.problem(runID, what, "%v", err)
}

// tick checks the context every so many items.
func (v *verifier) tick() error {
	v.n++
	if v.n%1024 == 0 {
		if err := v.ctx.Err(); err != nil {
			v.err = err
			return errStop
		}
	}
	return nil
}

// section runs fn with bbolt panics contained: a panic ends the section
// and becomes a problem; the next section still runs.
func (v *verifier) section(name string, fn func() error) error {
	err := guard(v.path, fn)
	if v.err != nil {
		return v.err
	}
	var ce *CorruptError
	if errors.As(err, &ce) && ce.What == "file" {
		v.problem("", "file", "reading the %s: %s", name, ce.Reason)
		return nil
	}
	return err
}

func (v *verifier) bucket(name []byte) *bolt.Bucket {
	b := v.tx.Bucket(name)
	if b == nil {
		v.problem("", "file", "bucket %q is missing", name)
	}
	return b
}

func (v *verifier) checkRuns() error {
	b := v.bucket(bucketRuns)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, val := c.First(); k != nil; k, val = c.Next() {
		if err := v.tick(); err != nil {
			return err
		}
		id := string(k)
		v.rep.Runs++
		f := &runFacts{damaged: true}
		v.runs[id] = f
		v.ids = append(v.ids, id)
		f.problem = len(v.rep.Problems)
		if val == nil {
			v.problem(id, "run", "a bucket where the run's value should be")
			continue
		}
		r, err := decodeRun(id, val)
		if err != nil {
			v.damaged(id, "run", err)
			continue
		}
		*f = runFacts{status: r.Status, epoch: r.Epoch, wake: r.WakeAt}
		v.rep.ByStatus[r.Status]++
	}
	v.allRuns = true
	return nil
}

func (v *verifier) checkStatusIndex() error {
	b := v.bucket(bucketStatus)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if err := v.tick(); err != nil {
			return err
		}
		if len(k) < 2 {
			v.problem("", "status index", "malformed key %x", k)
			continue
		}
		st, id := Status(k[0]), string(k[1:])
		f := v.runs[id]
		switch {
		case f == nil:
			if v.allRuns {
				v.problem(id, "status index", "entry (%s) for a run that does not exist", st)
			}
		case f.damaged:
			// The run is reported already: add what the index says of it.
			if f.problem < len(v.rep.Problems) {
				v.rep.Problems[f.problem].Detail += fmt.Sprintf(" (the status index lists it as %s)", st)
			}
		case st != f.status:
			v.problem(id, "status index", "entry lists the run as %s, but the run is %s", st, f.status)
			f.statusEntry = true // one problem, not a second for the missing entry
		default:
			f.statusEntry = true
		}
	}
	for _, id := range v.ids {
		if f := v.runs[id]; !f.damaged && !f.statusEntry {
			v.problem(id, "status index", "no entry for the run (%s)", f.status)
		}
	}
	return nil
}

func (v *verifier) checkWakeIndex() error {
	b := v.bucket(bucketWake)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if err := v.tick(); err != nil {
			return err
		}
		v.rep.Timers++
		if len(k) < 9 {
			v.problem("", "wake index", "malformed key %x", k)
			continue
		}
		at := fromUnixNano(int64(binary.BigEndian.Uint64(k[:8]) ^ 1<<63))
		id := string(k[8:])
		f := v.runs[id]
		switch {
		case f == nil:
			if v.allRuns {
				v.problem(id, "wake index", "timer at %s for a run that does not exist", at.Format(time.RFC3339Nano))
			}
		case f.damaged:
		case !at.Equal(f.wake):
			v.problem(id, "wake index", "timer at %s, but the run's wake time is %s", at.Format(time.RFC3339Nano), fmtTime(f.wake))
		default:
			f.wakeEntry = true
		}
	}
	for _, id := range v.ids {
		if f := v.runs[id]; !f.damaged && !f.wake.IsZero() && !f.wakeEntry {
			v.problem(id, "wake index", "no entry for the run's wake time %s", fmtTime(f.wake))
		}
	}
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "(none)"
	}
	return t.Format(time.RFC3339Nano)
}

func (v *verifier) checkRecords() error {
	recs := v.bucket(bucketRecords)
	if recs == nil {
		return nil
	}
	c := recs.Cursor()
	for k, val := c.First(); k != nil; k, val = c.Next() {
		if err := v.tick(); err != nil {
			return err
		}
		if val != nil {
			v.problem("", "records", "a value where a run's record bucket should be (key %q)", k)
			continue
		}
		id, epoch := string(k), uint32(0)
		if i := bytes.IndexByte(k, 0); i >= 0 {
			if len(k)-i-1 != 4 {
				v.problem(string(k[:i]), "records", "malformed bucket name %x", k)
				continue
			}
			id, epoch = string(k[:i]), binary.BigEndian.Uint32(k[i+1:])
		}
		v.rep.Epochs++
		f := v.runs[id]
		suffix := ""
		switch {
		case f == nil:
			if v.allRuns {
				v.problem(id, "records", "journal of epoch %d for a run that does not exist", epoch)
			}
		case f.damaged:
			if epoch != 0 {
				suffix = " of epoch " + strconv.FormatUint(uint64(epoch), 10)
			}
		case epoch > f.epoch:
			v.problem(id, "records", "journal of epoch %d, but the run is at epoch %d", epoch, f.epoch)
		case epoch < f.epoch:
			suffix = " of ended epoch " + strconv.FormatUint(uint64(epoch), 10)
		}
		b := recs.Bucket(k)
		if b == nil {
			continue
		}
		// One guard per journal: damaged pages in one run's records do
		// not hide the other runs'.
		err := guard(v.path, func() error {
			return b.ForEach(func(rk, rv []byte) error {
				if err := v.tick(); err != nil {
					return err
				}
				v.rep.Records++
				what := ""
				if len(rk) == 8 {
					what = "record " + strconv.FormatUint(uint64(binary.BigEndian.Uint32(rk)), 10) + "." + strconv.FormatUint(uint64(binary.BigEndian.Uint32(rk[4:])), 10) + suffix
				}
				if rv == nil {
					if what == "" {
						what = "records"
					}
					v.problem(id, what, "a bucket where a record should be")
					return nil
				}
				if _, err := decodeRecord(id, rk, rv); err != nil {
					v.damaged(id, what, err)
				}
				return nil
			})
		})
		if err := v.contained(id, "records", err); err != nil {
			return err
		}
	}
	return nil
}

// contained turns a contained bbolt panic in one run's bucket into a
// problem of that run; the context's error stops the walk.
func (v *verifier) contained(id, what string, err error) error {
	if err == nil {
		return nil
	}
	if v.err != nil {
		return errStop
	}
	v.damaged(id, what, err)
	return nil
}

func (v *verifier) checkInboxes() error {
	inbox := v.bucket(bucketInbox)
	if inbox == nil {
		return nil
	}
	c := inbox.Cursor()
	for k, val := c.First(); k != nil; k, val = c.Next() {
		if err := v.tick(); err != nil {
			return err
		}
		id := string(k)
		if val != nil {
			v.problem(id, "inbox", "a value where the run's inbox bucket should be")
			continue
		}
		if v.runs[id] == nil && v.allRuns {
			v.problem(id, "inbox", "messages for a run that does not exist")
		}
		b := inbox.Bucket(k)
		if b == nil {
			continue
		}
		err := guard(v.path, func() error {
			last := b.Sequence()
			return b.ForEach(func(mk, mv []byte) error {
				if err := v.tick(); err != nil {
					return err
				}
				v.rep.Messages++
				what := "message"
				if n := len(mk); n >= 9 && mk[n-9] == 0 {
					seq := binary.BigEndian.Uint64(mk[n-8:])
					what = fmt.Sprintf("message %d on channel %q", seq, mk[:n-9])
					if seq > last {
						v.problem(id, what, "sequence number beyond the inbox's (%d): a new message would overwrite it", last)
					}
				}
				if mv == nil {
					v.problem(id, what, "a bucket where a message should be")
					return nil
				}
				if _, err := decodeMessage(id, mk, mv); err != nil {
					v.damaged(id, what, err)
				}
				return nil
			})
		})
		if err := v.contained(id, "inbox", err); err != nil {
			return err
		}
	}
	return nil
}

func (v *verifier) checkExpiry() error {
	b := v.bucket(bucketExpire)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if err := v.tick(); err != nil {
			return err
		}
		if _, ok := parseExpireKey(k); !ok {
			v.problem("", "expiry index", "malformed key %x", k)
		}
	}
	return nil
}
