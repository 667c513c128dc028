package durable

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// FuzzReplay feeds the engine journals it did not write: the fuzzer's
// bytes become a run of ttFuzzWorkflow (which uses every durable
// operation) and a sequence of records of arbitrary kinds, flags, names,
// times and data in a journal.Memory; an engine resumes the run inside a
// synctest bubble. The run must end (completed, failed, canceled or
// parked) within a bounded virtual time, no panic may escape, and Close
// must not abandon anything.
//
// Input layout (missing bytes read as zero):
//
//	flags        1 byte: 1 cancel requested, 2 deadline, 4 parked, 8 small MaxHistory
//	param        1 byte: the deadline in minutes, or MaxHistory-8
//	messages     1 byte: messages sent on "in" (3 + mod 4)
//	records, until the input ends (at most fuzzMaxRecords):
//	  pos, seq, kind, flags  1 byte each
//	  name                   1 byte length, then the bytes
//	  time                   1 byte mode (0: zero), then 8 bytes (ns offset from the run's creation, mod ±48h)
//	  data                   2 bytes length (big endian), then the bytes
//
// The seed corpus in testdata/fuzz/FuzzReplay holds journals the workflow
// really wrote, cut at every position; regenerate it with
// DURABLE_FUZZ_SEEDS=1 go test -run=TestTortureFuzzSeeds .
func FuzzReplay(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 3})
	f.Add([]byte{2, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) { fuzzReplay(t, data) })
	})
}

const (
	fuzzRun        = "fz-1"
	fuzzMaxRecords = 64
	fuzzTimeRange  = int64(48 * time.Hour)
	fuzzBound      = 500 * time.Hour // virtual: far beyond every wait the journal or the workflow can ask for
)

// fuzzWorkflows returns the fuzzed workflow and its child. The workflow
// uses every durable operation once, in a fixed order, and continues as
// new once.
func fuzzWorkflows() (*Workflow[int, string], *Workflow[int, int]) {
	child := Define("fz-child", func(ctx Context, in int) (int, error) {
		return Step(ctx, "c", func(context.Context) (int, error) { return in * 3, nil })
	})
	wf := Define("fz", func(ctx Context, in int) (string, error) {
		var out []string
		add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
		v, err := Step(ctx, "a", func(sctx context.Context) (int, error) {
			if info, _ := StepInfoFrom(sctx); info.Attempt == 1 {
				return 0, errors.New("the first attempt fails")
			}
			return 7, nil
		}, WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Second)}))
		if err != nil {
			return "", err
		}
		add("a=%d", v)
		if err := Sleep(ctx, time.Minute); err != nil {
			return "", err
		}
		now := Now(ctx)
		f1 := Go(ctx, "f1", func(context.Context) (int, error) { return 1, nil })
		f2 := Go(ctx, "f2", func(context.Context) (string, error) { return "two", nil })
		if err := AwaitAll(ctx, f1, f2); err != nil {
			return "", err
		}
		n1, err1 := f1.Get(ctx)
		s2, err2 := f2.Get(ctx)
		if err := errors.Join(err1, err2); err != nil {
			return "", err
		}
		add("f=%d,%s", n1, s2)
		m, err := Receive[string](ctx, "in")
		if err != nil {
			return "", err
		}
		add("m=%s", m)
		if _, err := ReceiveTimeout[string](ctx, "quiet", 10*time.Minute); !errors.Is(err, ErrTimeout) {
			return "", fmt.Errorf("receive on a quiet channel: %w", err)
		}
		c, err := RunChild(ctx, child, "", in+1)
		if err != nil {
			return "", err
		}
		add("c=%d", c)
		rc := OnReceive[string]("in")
		i, err := AwaitAny(ctx, rc, NewTimer(ctx, time.Hour))
		if err != nil {
			return "", err
		}
		m2, _ := rc.Value()
		add("sel=%d:%s", i, m2)
		if err := SleepUntil(ctx, now.Add(2*time.Hour)); err != nil {
			return "", err
		}
		if _, err := Step(ctx, "once", func(context.Context) (int, error) { return 1, nil }, AtMostOnce()); err != nil {
			return "", err
		}
		saga := NewSaga(ctx)
		saga.Add("undo", func(context.Context) error { return nil })
		if err := saga.Compensate(nil); err != nil {
			return "", err
		}
		if in == 0 {
			return "", ContinueAsNew(ctx, 1)
		}
		return strings.Join(out, " "), nil
	})
	return wf, child
}

// fuzzInput reads the fuzzer's bytes.
type fuzzInput struct{ b []byte }

func (r *fuzzInput) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzInput) bytes(n int) []byte {
	n = min(n, len(r.b))
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// ttFuzzRecord reads one record, with times relative to base.
func (r *fuzzInput) record(base time.Time) journal.Record {
	rec := journal.Record{Pos: uint32(r.byte()), Seq: uint32(r.byte()), Kind: r.byte(), Flags: r.byte()}
	rec.Name = string(r.bytes(int(r.byte())))
	if r.byte() != 0 {
		off := int64(binary.BigEndian.Uint64(append(r.bytes(8), make([]byte, 8)...)[:8])) % fuzzTimeRange
		rec.Time = base.Add(time.Duration(off))
	}
	hi, lo := r.byte(), r.byte()
	if d := r.bytes(int(hi)<<8 | int(lo)); len(d) > 0 {
		rec.Data = d
	}
	return rec
}

// fuzzEncode is the inverse of the record reader, for seeds.
func fuzzEncode(head [3]byte, recs []journal.Record, base time.Time) []byte {
	out := head[:]
	for _, r := range recs {
		out = append(out, byte(r.Pos), byte(r.Seq), r.Kind, r.Flags, byte(len(r.Name)))
		out = append(out, r.Name...)
		if r.Time.IsZero() {
			out = append(out, 0)
		} else {
			out = append(out, 1)
			out = binary.BigEndian.AppendUint64(out, uint64(r.Time.Sub(base)))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(r.Data)))
		out = append(out, r.Data...)
	}
	return out
}

func fuzzReplay(t *testing.T, data []byte) {
	ctx := context.Background()
	in := &fuzzInput{b: data}
	// At least three messages: the first epoch's Receive and AwaitAny
	// take one each, the second epoch's Receive the third; it must not
	// wait forever.
	flags, param, msgs := in.byte(), in.byte(), 3+int(in.byte()%4)
	base := time.Now()
	mem := journal.NewMemory()
	input, _ := encodePayload(0, 0)
	row := journal.Run{ID: fuzzRun, Workflow: "fz", Status: journal.StatusRunning, Input: input, CreatedAt: base}
	if flags&2 != 0 {
		row.Deadline = base.Add(time.Duration(param) * time.Minute)
	}
	if _, _, err := mem.CreateRun(ctx, row); err != nil {
		t.Fatal(err)
	}
	for range fuzzMaxRecords {
		if len(in.b) == 0 {
			break
		}
		r := in.record(base)
		// A record the store refuses (a taken position, an overlong
		// name) is left out, as it would be in a real journal.
		_ = mem.Commit(ctx, &journal.Batch{Append: []journal.Append{{RunID: fuzzRun, Record: r}}})
	}
	var u journal.Update
	if flags&1 != 0 {
		u.CancelRequested = true
	}
	if flags&4 != 0 {
		u.Status, u.Err = journal.StatusParked, encodeError(errors.New("parked by the fuzzer"))
	}
	if flags&5 != 0 {
		u.RunID = fuzzRun
		if err := mem.Commit(ctx, &journal.Batch{Update: []journal.Update{u}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &Config{Logger: slog.New(slog.DiscardHandler), Retention: -1}
	if flags&8 != 0 {
		cfg.MaxHistory = 8 + int(param%32)
	}
	wf, child := fuzzWorkflows()
	cfg.Workflows = []Definition{wf, child}

	e, err := New(mem, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for k := range msgs {
		if err := Send(ctx, e, fuzzRun, "in", fmt.Sprint("m", k)); err != nil && !errors.Is(err, ErrFinished) {
			t.Fatalf("Send: %v", err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, fuzzBound)
	defer cancel()
	h, err := Start(rctx, e, wf, fuzzRun, 0) // the run exists: attaches
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	_, err = h.Result(rctx)
	info, gerr := e.Get(ctx, fuzzRun)
	if gerr != nil {
		t.Fatalf("Get: %v", gerr)
	}
	if rctx.Err() != nil || info.Status == StatusRunning {
		t.Errorf("the run did not end within %v of virtual time: %v (Result: %v)", fuzzBound, info.Status, err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestTortureFuzzSeeds writes the seed corpus of FuzzReplay: the journals
// ttFuzzWorkflow writes in an undisturbed run (with messages for every
// receive) and in a canceled one, cut after every record. It runs only
// with DURABLE_FUZZ_SEEDS=1.
func TestTortureFuzzSeeds(t *testing.T) {
	if os.Getenv("DURABLE_FUZZ_SEEDS") == "" {
		t.Skip("set DURABLE_FUZZ_SEEDS=1 to regenerate testdata/fuzz/FuzzReplay")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReplay")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, cancelAt := range []time.Duration{0, 90 * time.Second} {
		var recs []journal.Record
		var base time.Time
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			mem := journal.NewMemory()
			wf, child := fuzzWorkflows()
			e, err := New(mem, &Config{Workflows: []Definition{wf, child}, Logger: slog.New(slog.DiscardHandler), Retention: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			base = time.Now()
			// The seeds run the first epoch (input 0) only: cut the
			// journal before ContinueAsNew ends it.
			h, err := Start(ctx, e, wf, fuzzRun, 1)
			if err != nil {
				t.Fatal(err)
			}
			for k := range 3 {
				if err := Send(ctx, e, fuzzRun, "in", fmt.Sprint("m", k)); err != nil {
					t.Fatal(err)
				}
			}
			if cancelAt > 0 {
				time.Sleep(cancelAt)
				if err := e.Cancel(ctx, fuzzRun); err != nil {
					t.Fatal(err)
				}
			}
			h.Result(ctx)
			if recs, err = mem.Records(ctx, fuzzRun); err != nil {
				t.Fatal(err)
			}
		})
		for n := 0; n <= len(recs); n++ {
			head := [3]byte{0, 0, 0} // three messages
			if cancelAt > 0 {
				head[0] = 1
			}
			b := fuzzEncode(head, recs[:n], base)
			name := filepath.Join(dir, fmt.Sprintf("seed-cancel%v-%02d", cancelAt > 0, n))
			if err := os.WriteFile(name, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("cancel at %v: %d records", cancelAt, len(recs))
	}
}
