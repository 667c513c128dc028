package durable_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// The bad-input matrix, at the engine level. What other tests cover:
//
//   - 0-byte file, random bytes, foreign bbolt file, truncated file:
//     badfile_test.go (TestOpenEmptyFile, TestOpenRandomBytes,
//     TestOpenForeignBoltFile, TestOpenTruncatedJournal) and
//     journal/bolt_test.go (TestBoltNotJournal, TestBoltTruncated at five
//     sizes).
//   - a file locked by another process: journal/bolt_test.go
//     (TestBoltLockedByOtherProcess: a real second process, ErrLocked within
//     the timeout) and badfile_test.go (TestOpenLockedFile: a second engine).
//   - damaged values in data pages, at the store level: journal/bolt_test.go
//     (TestBoltDamagedValue); a damaged freelist: TestBoltFreelistDamaged.
//   - a corrupted length field: journal/format_internal_test.go
//     (TestHugeLengthNoAllocation: 4 GiB lengths refused without
//     allocating), and FuzzDecodeRecord, FuzzDecodeRun.
//   - payloads that cannot be encoded: durable_test.go
//     (TestUnencodableInput: a chan and a cycle as input and message;
//     TestPayloadSharedPointersAreNotCycles); payloads over the limit:
//     TestPayloadTooLarge (input, step result, workflow result, message).
//   - a message whose type changed: inbox_test.go (undecodable messages
//     park the run and stay in the inbox); a step result whose type
//     changed: replay_test.go (TestReplayChangedResultTypeParks).
//
// Added here: damaged records at the engine level (only that run parks),
// both meta pages damaged (Open fails), the other payloads that cannot be
// encoded (step and workflow results, child input, ContinueAsNew input),
// an input whose type changed, and a full disk (torture_diskfull_test.go).

// flipAll flips a byte in every copy of s in data (bbolt's copy on write
// can leave stale copies in free pages) and returns how many it found.
func flipAll(data []byte, s string) int {
	n := 0
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(s))
		if j < 0 {
			return n
		}
		data[i+j+len(s)/2] ^= 0x20
		i += j + len(s)
		n++
	}
}

// A damaged record in the data pages of a journal with many runs: only
// the run it belongs to is parked, with an error matching
// journal.ErrCorrupt; the others resume and complete.
func TestTortureDamagedRecord(t *testing.T) {
	t.Parallel()
	const runs, victim = 40, "r-17"
	path := filepath.Join(t.TempDir(), "journal.db")
	var block atomic.Bool
	block.Store(true)
	var waiting atomic.Int32
	wf := durable.Define("tt-damage", func(ctx durable.Context, in string) (string, error) {
		// The result is upper case: only the record holds it, not the
		// run's input.
		a, err := durable.Step(ctx, "a", func(context.Context) (string, error) { return strings.ToUpper(in), nil })
		if err != nil {
			return "", err
		}
		_, err = durable.Step(ctx, "b", func(sctx context.Context) (int, error) {
			if block.Load() {
				waiting.Add(1)
				<-sctx.Done()
				return 0, sctx.Err()
			}
			return 1, nil
		})
		return a, err
	})
	input := func(id string) string {
		if id == victim {
			return "tt-canary-record-payload-4c1d-" + strings.Repeat("x", 40)
		}
		return id + "-" + strings.Repeat(".", 60)
	}
	e, err := durable.Open(path, quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	for i := range runs {
		id := fmt.Sprintf("r-%02d", i)
		if _, err := durable.Start(ctx, e, wf, id, input(id)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every run to reach step b", func() bool { return waiting.Load() == runs })
	mustClose(t, e)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := flipAll(data, strings.ToUpper(input(victim))); n == 0 {
		t.Fatal("the record's payload is not in the file")
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	block.Store(false)
	e, err = durable.Open(path, quiet(config(wf)))
	if err != nil {
		t.Fatalf("Open of a journal with a damaged record: %v; want success (only one run is damaged)", err)
	}
	defer mustClose(t, e)
	info := waitStatus(t, e, victim, durable.StatusParked)
	if !errors.Is(info.Err, journal.ErrCorrupt) {
		t.Errorf("parked run: Err = %v; want an error matching journal.ErrCorrupt", info.Err)
	}
	if _, err := durable.Run(ctx, e, wf, victim, ""); !errors.Is(err, durable.ErrParked) || !errors.Is(err, journal.ErrCorrupt) {
		t.Errorf("Result of the damaged run: %v; want ErrParked and journal.ErrCorrupt", err)
	}
	for i := range runs {
		id := fmt.Sprintf("r-%02d", i)
		if id == victim {
			continue
		}
		if got, err := durable.Run(ctx, e, wf, id, ""); err != nil || got != strings.ToUpper(input(id)) {
			t.Errorf("run %s: %q, %v; want it completed", id, got, err)
		}
	}
}

// Both meta pages damaged: Open fails with journal.ErrCorrupt, at once,
// and the file is left as it was.
func TestTortureMetaPagesDamaged(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "journal.db")
	wf := durable.Define("tt-meta", func(ctx durable.Context, in int) (int, error) {
		return durable.Step(ctx, "a", func(context.Context) (int, error) { return in, nil })
	})
	e, err := durable.Open(path, quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := durable.Run(testCtx(t), e, wf, fmt.Sprint("m-", i), i); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, e)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := os.Getpagesize()
	// Keep each meta page's magic and version (so the file is still
	// recognized as bbolt); damage the rest of the meta, checksum included.
	for _, page := range []int{0, 1} {
		for i := page*pageSize + 24; i < page*pageSize+80; i++ {
			data[i] = 0xa5
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	openFails(t, path, journal.ErrCorrupt)
}

type cycle struct {
	Next *cycle
}

// Payloads that cannot be encoded, where no other test puts them: a step's
// result, a workflow's result, a child's input, a ContinueAsNew input. Each
// gives an error matching ErrPayload, nothing panics, and a child whose
// input is refused is not created.
func TestTortureUnencodablePayloads(t *testing.T) {
	t.Parallel()
	cyc := &cycle{}
	cyc.Next = cyc
	child := durable.Define("tt-enc-child", func(ctx durable.Context, in any) (int, error) { return 1, nil })
	cases := []struct {
		name string
		fn   func(ctx durable.Context) (any, error)
		// status is the run's end: the workflow returns the error it got.
		status durable.Status
	}{
		{"step result chan", func(ctx durable.Context) (any, error) {
			return durable.Step(ctx, "s", func(context.Context) (chan int, error) { return make(chan int), nil })
		}, durable.StatusFailed},
		{"step result cycle", func(ctx durable.Context) (any, error) {
			return durable.Step(ctx, "s", func(context.Context) (*cycle, error) { return cyc, nil })
		}, durable.StatusFailed},
		{"future result cycle", func(ctx durable.Context) (any, error) {
			return durable.Go(ctx, "s", func(context.Context) (*cycle, error) { return cyc, nil }).Get(ctx)
		}, durable.StatusFailed},
		{"workflow result", func(ctx durable.Context) (any, error) {
			return func() {}, nil
		}, durable.StatusFailed},
		{"child input chan", func(ctx durable.Context) (any, error) {
			return durable.RunChild(ctx, child, ctx.RunID()+"-child", any(make(chan int)))
		}, durable.StatusFailed},
		{"child input cycle", func(ctx durable.Context) (any, error) {
			return durable.RunChild(ctx, child, ctx.RunID()+"-child", any(cyc))
		}, durable.StatusFailed},
		{"child input too large", func(ctx durable.Context) (any, error) {
			return durable.RunChild(ctx, child, ctx.RunID()+"-child", any(strings.Repeat("x", 5000)))
		}, durable.StatusFailed},
		{"continue-as-new input", func(ctx durable.Context) (any, error) {
			return nil, durable.ContinueAsNew(ctx, any(cyc))
		}, durable.StatusFailed},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			wf := durable.Define("tt-enc", func(ctx durable.Context, _ int) (any, error) { return c.fn(ctx) })
			e, err := durable.New(journal.NewMemory(), quiet(&durable.Config{Workflows: []durable.Definition{wf, child}, MaxPayloadBytes: 4096}))
			if err != nil {
				t.Fatal(err)
			}
			defer mustClose(t, e)
			id := fmt.Sprint("enc-", i)
			done := make(chan error, 1)
			go func() {
				defer func() {
					if p := recover(); p != nil {
						done <- fmt.Errorf("panic: %v", p)
					}
				}()
				_, err := durable.Run(testCtx(t), e, wf, id, 0)
				done <- err
			}()
			err = recv(t, done, "the run")
			if !errors.Is(err, durable.ErrPayload) {
				t.Errorf("Run: %v; want an error matching ErrPayload", err)
			}
			if info := mustGet(t, e, id); info.Status != c.status || !errors.Is(info.Err, durable.ErrPayload) {
				t.Errorf("Get: %v, %v; want %v with an error matching ErrPayload", info.Status, info.Err, c.status)
			}
			if _, err := e.Get(testCtx(t), id+"-child"); !errors.Is(err, durable.ErrNotFound) {
				t.Errorf("Get of the child: %v; want ErrNotFound (never created)", err)
			}
		})
	}
}

// A run whose workflow's input type changed between versions parks with
// an error matching ErrPayload (its input is kept), and completes when the
// old code comes back.
func TestTortureInputTypeChanged(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		var block atomic.Bool
		block.Store(true)
		entered := make(chan struct{}, 1)
		v1 := durable.Define("tt-input", func(ctx durable.Context, in int) (int, error) {
			return durable.Step(ctx, "wait", func(sctx context.Context) (int, error) {
				if block.Load() {
					signal(entered)
					return 0, blockUntilDone(sctx)
				}
				return in * 2, nil
			})
		})
		var v2Ran atomic.Bool
		v2 := durable.Define("tt-input", func(ctx durable.Context, in struct{ Name string }) (int, error) {
			v2Ran.Store(true)
			return len(in.Name), nil
		})
		ctx := testCtx(t)
		e1 := open(t, config(v1))
		if _, err := durable.Start(ctx, e1, v1, "in-1", 21); err != nil {
			t.Fatal(err)
		}
		recv(t, entered, "the step to start")
		mustClose(t, e1)

		e2 := open(t, config(v2))
		info := waitStatus(t, e2, "in-1", durable.StatusParked)
		if !errors.Is(info.Err, durable.ErrPayload) || !strings.Contains(info.Err.Error(), "input") {
			t.Errorf("parked with %v; want an error about the input matching ErrPayload", info.Err)
		}
		if v2Ran.Load() {
			t.Error("the new code ran with an input it cannot decode")
		}
		mustClose(t, e2)

		block.Store(false)
		e3 := open(t, config(v1))
		if got, err := durable.Run(ctx, e3, v1, "in-1", 0); err != nil || got != 42 {
			t.Errorf("with the old code again: %v, %v; want 42", got, err)
		}
	})
}
