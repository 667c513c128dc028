package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/durable-go/durable"
)

// P7: what the journal costs on disk. A pass writes runs × steps steps of
// a small payload; the file is measured, its records walked read-only
// (logical bytes: key + value of every record), the finished runs purged
// (Engine.Purge with a time an hour ahead deletes everything finished),
// and the same amount written again: bbolt reuses the freed pages, so the
// file should not double.

type bytesInput struct {
	Steps   int
	Payload int // bytes of each step's result, a string
}

var bytesWorkflow = durable.Define("bench-bytes", func(ctx durable.Context, in bytesInput) (int, error) {
	for range in.Steps {
		if _, err := durable.Step(ctx, "step", func(context.Context) (string, error) {
			return strings.Repeat("x", in.Payload), nil
		}); err != nil {
			return 0, err
		}
	}
	return in.Steps, nil
})

// bytesWriters is how many runs a write pass keeps in flight.
const bytesWriters = 1000

func runBytes(b *bench) (*result, error) {
	runs, n, payload := b.cfg.bytesRuns, b.cfg.bytesSteps, b.cfg.payload
	total := runs * n
	path := b.path("p7")
	defer os.Remove(path)
	in := bytesInput{Steps: n, Payload: payload}

	var pass1 time.Duration
	err := b.profiled("P7", func() (err error) {
		onSide(sideEngine, func() { pass1, err = writePass(b, path, "a-", runs, in) })
		return err
	})
	if err != nil {
		return nil, err
	}
	size1 := fileSize(path)
	w, err := walkJournal(path)
	if err != nil {
		return nil, err
	}
	if w.records != total {
		return nil, fmt.Errorf("found %d records, want %d", w.records, total)
	}
	b.logf("  P7 pass 1: %s steps in %.1f s, file %s", group(int64(total)), pass1.Seconds(), mb(float64(size1)))

	purged, purgeTime, err := purgeAll(b, path)
	if err != nil {
		return nil, err
	}
	size2 := fileSize(path)
	free2, err := freeBytes(path)
	if err != nil {
		return nil, err
	}
	b.logf("  P7 purge: %s items in %.1f s, file %s, %s free", group(int64(purged)), purgeTime.Seconds(), mb(float64(size2)), mb(float64(free2)))

	pass2, err := writePass(b, path, "b-", runs, in)
	if err != nil {
		return nil, err
	}
	size3 := fileSize(path)
	free3, err := freeBytes(path)
	if err != nil {
		return nil, err
	}
	b.logf("  P7 pass 2: %s steps in %.1f s, file %s, %s free", group(int64(total)), pass2.Seconds(), mb(float64(size3)), mb(float64(free3)))

	encoded := msgpackStrLen(payload)
	logical := float64(w.recordBytes) / float64(total)
	steps := group(int64(total))
	res := &result{rows: []row{
		{
			figure:   "P7",
			what:     fmt.Sprintf("journal: logical bytes per step (%d-byte payload)", payload),
			measured: fmt.Sprintf("%.1f B/step (key + value)", logical),
			baseline: fmt.Sprintf("%d B payload", payload),
			ratio:    ratio(logical, float64(payload)),
			target:   fmt.Sprintf("<= %d B (payload + 48)", payload+48),
			verdict:  atMost(logical, float64(payload+48)),
		},
		{
			figure:   "P7",
			what:     "journal: file after " + steps + " steps",
			measured: fmt.Sprintf("%s (%.1f B/step)", mb(float64(size1)), float64(size1)/float64(total)),
		},
		{
			figure:   "P7",
			what:     "journal: file after purging them",
			measured: fmt.Sprintf("%s (%s free for reuse)", mb(float64(size2)), mb(float64(free2))),
		},
		{
			figure:   "P7",
			what:     "journal: file after " + steps + " more steps",
			measured: fmt.Sprintf("%s (%s free)", mb(float64(size3)), mb(float64(free3))),
			baseline: mb(float64(size1)) + " after the first pass",
			ratio:    ratio(float64(size3), float64(size1)),
			target:   "< 2x (pages reused)",
			verdict:  atMost(float64(size3)/float64(size1), 1.999),
		},
	}}
	r, err := compactRow(path, size3, total)
	if err != nil {
		return nil, err
	}
	res.rows = append(res.rows, r)
	res.note("%s runs x %d steps per pass, %s in flight; each step returns a %d-byte string (%d bytes of msgpack); pass 1 took %.1f s (%s steps/s), pass 2 %.1f s",
		group(int64(runs)), n, group(int64(min(bytesWriters, runs))), payload, encoded, pass1.Seconds(), num(float64(total)/pass1.Seconds()), pass2.Seconds())
	res.note("logical: %s records, %s bytes of keys and values (a record: 8-byte key, value = 5-byte header + msgpack [kind, flags, name, time, data]); everything else (run rows, indexes, bucket entries): %.1f B/step more",
		group(int64(w.records)), group(w.recordBytes), float64(w.otherBytes)/float64(total))
	res.note("purge: Engine.Purge(ctx, now+1h) deleted %s items in %.2f s (transactions of 100); bbolt does not shrink the file, it reuses the freed pages", group(int64(purged)), purgeTime.Seconds())
	return res, nil
}

// writePass opens the journal at path and runs runs runs of in with ids
// prefix+i, bytesWriters at a time.
func writePass(b *bench, path, prefix string, runs int, in bytesInput) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), figureTimeout)
	defer cancel()
	e, err := durable.Open(path, b.engineConfig(bytesWorkflow))
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	err = pool(runs, bytesWriters, func(i int) error {
		_, err := durable.Run(ctx, e, bytesWorkflow, prefix+runID(i), in)
		return err
	})
	el := time.Since(t0)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return el, err
}

// purgeAll deletes every finished run of the journal at path.
func purgeAll(b *bench, path string) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), figureTimeout)
	defer cancel()
	e, err := durable.Open(path, b.engineConfig(bytesWorkflow))
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	n, err := e.Purge(ctx, time.Now().Add(time.Hour))
	el := time.Since(t0)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return n, el, err
}

// journalWalk is what a read-only walk of a journal file found.
type journalWalk struct {
	records     int
	recordBytes int64 // keys and values of the records
	otherBytes  int64 // keys and values of everything else
}

func walkJournal(path string) (journalWalk, error) {
	var w journalWalk
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return w, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, top *bolt.Bucket) error {
			return walkBucket(top, func(depth int, k, v []byte) {
				if string(name) == string(rawRecords) && depth == 1 && v != nil {
					w.records++
					w.recordBytes += int64(len(k) + len(v))
				} else {
					w.otherBytes += int64(len(k) + len(v))
				}
			})
		})
	})
	return w, err
}

// walkBucket calls fn for every key of b and of its nested buckets (v is
// nil for a nested bucket's own entry); depth is 0 for b's keys.
func walkBucket(b *bolt.Bucket, fn func(depth int, k, v []byte)) error {
	var walk func(b *bolt.Bucket, depth int) error
	walk = func(b *bolt.Bucket, depth int) error {
		return b.ForEach(func(k, v []byte) error {
			fn(depth, k, v)
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					return walk(nb, depth+1)
				}
			}
			return nil
		})
	}
	return walk(b, 0)
}

// freeBytes returns the bytes in free pages of the bbolt file at path.
func freeBytes(path string) (int64, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	st := db.Stats()
	return int64(st.FreePageN) * int64(db.Info().PageSize), nil
}

// msgpackStrLen is the encoded size of a string of n bytes.
func msgpackStrLen(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n < 1<<8:
		return 2 + n
	case n < 1<<16:
		return 3 + n
	}
	return 5 + n
}
