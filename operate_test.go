package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

type order struct {
	Item string `json:"item"`
	Qty  int    `json:"qty"`
}

// TestGetPending follows a run through a retry, a sleep, a receive and a
// child, and checks at each wait what Get says the run is doing.
func TestGetPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		kid := durable.Define("op-kid", func(ctx durable.Context, n int) (int, error) {
			return durable.Receive[int](ctx, "go")
		})
		var calls atomic.Int32
		wf := durable.Define("op-pending", func(ctx durable.Context, _ int) (string, error) {
			_, err := durable.Step(ctx, "flaky", func(context.Context) (int, error) {
				if calls.Add(1) == 1 {
					return 0, errors.New("boom")
				}
				return 1, nil
			}, durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Minute)}))
			if err != nil {
				return "", err
			}
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return "", err
			}
			o, err := durable.Receive[order](ctx, "approve")
			if err != nil {
				return "", err
			}
			if _, err := durable.RunChild(ctx, kid, "", 1); err != nil {
				return "", err
			}
			return o.Item, nil
		})
		e, err := durable.New(journal.NewMemory(), quiet(&durable.Config{Workflows: []durable.Definition{wf, kid}}))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		t0 := time.Now()
		h, err := durable.Start(ctx, e, wf, "p", 0)
		if err != nil {
			t.Fatal(err)
		}
		get := func() durable.RunInfo {
			t.Helper()
			synctest.Wait()
			info, err := e.Get(ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Pending) != 1 {
				t.Fatalf("Pending = %+v, want one operation", info.Pending)
			}
			return info
		}

		op := get().Pending[0]
		if op.Kind != "step" || op.Name != "flaky" || op.Attempt != 2 || !op.NextAttempt.Equal(t0.Add(time.Minute)) || op.LastError != "boom" {
			t.Errorf("retrying: %+v", op)
		}
		time.Sleep(time.Minute)
		op = get().Pending[0]
		if op.Kind != "sleep" || !op.Due.Equal(t0.Add(time.Minute+time.Hour)) {
			t.Errorf("sleeping: %+v", op)
		}
		time.Sleep(time.Hour)
		if err := durable.Send(ctx, e, "p", "other", 1); err != nil {
			t.Fatal(err)
		}
		info := get()
		if op := info.Pending[0]; op.Kind != "receive" || op.Name != "approve" || op.Inbox != 0 {
			t.Errorf("receiving: %+v", op)
		}
		if info.Inbox != 1 || info.InboxChannels["other"] != 1 {
			t.Errorf("Inbox = %d %v, want 1 on other", info.Inbox, info.InboxChannels)
		}

		if err := durable.Send(ctx, e, "p", "approve", json.RawMessage(`{"item": "book", "qty": 2}`)); err != nil {
			t.Fatal(err)
		}
		op = get().Pending[0]
		if op.Kind != "child" || op.Name != "op-kid" || op.Child != "p/3" {
			t.Errorf("awaiting a child: %+v", op)
		}
		if err := durable.Send(ctx, e, "p/3", "go", json.RawMessage(`7`)); err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != "book" {
			t.Fatalf("Result = %q, %v; want book", got, err)
		}
		info, err = e.Get(ctx, "p")
		if err != nil || info.Pending != nil {
			t.Errorf("finished run: Pending = %+v, %v", info.Pending, err)
		}
		synctest.Wait() // the child's live run goes after it handed its result over
		if st := e.Stats(); st.Steps != 1 || st.LoadedRuns != 0 {
			t.Errorf("Stats = %+v, want 1 step, no loaded run", st)
		}
	})
}

// TestSendJSON checks that a JSON message is refused when it is not JSON
// and decoded with encoding/json into the receiver's type, live and on
// replay.
func TestSendJSON(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		wf := durable.Define("op-json", func(ctx durable.Context, _ int) (order, error) {
			o, err := durable.Receive[order](ctx, "order")
			if err != nil {
				return o, err
			}
			_, err = durable.Step(ctx, "after", func(context.Context) (int, error) { return 1, nil })
			return o, err
		})
		e := open(t, &durable.Config{Workflows: []durable.Definition{wf}})
		h, err := durable.Start(ctx, e, wf, "j", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := durable.Send(ctx, e, "j", "order", json.RawMessage(`{"item":`)); !errors.Is(err, durable.ErrPayload) {
			t.Fatalf("Send of bad JSON = %v, want ErrPayload", err)
		}
		if err := durable.Send(ctx, e, "j", "order", json.RawMessage(`{"item":"pen","qty":3}`)); err != nil {
			t.Fatal(err)
		}
		want := order{Item: "pen", Qty: 3}
		if got, err := h.Result(ctx); err != nil || got != want {
			t.Fatalf("Result = %+v, %v; want %+v", got, err, want)
		}
		e.Close()
		e = open(t, &durable.Config{Workflows: []durable.Definition{wf}})
		h2, err := durable.Attach(ctx, e, wf, "j")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h2.Result(ctx); err != nil || got != want {
			t.Fatalf("after a restart: Result = %+v, %v; want %+v", got, err, want)
		}
	})
}

// TestResumeAndAttach parks a run whose code changed, fixes the code, and
// resumes it with Engine.Resume; Attach waits for it without an input.
func TestResumeAndAttach(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		var renamed atomic.Bool
		wf := durable.Define("op-resume", func(ctx durable.Context, _ int) (int, error) {
			name := "a"
			if renamed.Load() {
				name = "b"
			}
			if _, err := durable.Step(ctx, name, func(context.Context) (int, error) { return 1, nil }); err != nil {
				return 0, err
			}
			return durable.Receive[int](ctx, "go")
		})
		other := durable.Define("op-other", func(ctx durable.Context, _ int) (int, error) { return 0, nil })
		cfg := &durable.Config{Workflows: []durable.Definition{wf, other}}
		e := open(t, cfg)
		if _, err := durable.Start(ctx, e, wf, "r", 0); err != nil {
			t.Fatal(err)
		}
		waitInfo(t, e, "r", func(info durable.RunInfo) bool { return len(info.Pending) == 1 && info.Pending[0].Kind == "receive" })
		e.Close()
		renamed.Store(true)
		e = open(t, cfg)
		// Waiting for a message, the run is loaded (and parks) when one
		// comes, on any channel.
		if err := durable.Send(ctx, e, "r", "nudge", 0); err != nil {
			t.Fatal(err)
		}
		info := waitInfo(t, e, "r", func(info durable.RunInfo) bool { return info.Status == durable.StatusParked })
		var nd *durable.NondeterminismError
		if !errors.As(info.Err, &nd) || nd.Recorded != `step "a"` || nd.Called != `step "b"` || nd.Location == "" {
			t.Fatalf("parked with %v, want the diff", info.Err)
		}
		if _, err := durable.Attach(ctx, e, other, "r"); !errors.Is(err, durable.ErrWorkflowMismatch) {
			t.Errorf("Attach of another workflow = %v, want ErrWorkflowMismatch", err)
		}
		if _, err := durable.Attach(ctx, e, wf, "nope"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("Attach of an unknown run = %v, want ErrNotFound", err)
		}
		h, err := durable.Attach(ctx, e, wf, "r")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrParked) {
			t.Errorf("Result of a parked run = %v, want ErrParked", err)
		}
		renamed.Store(false)
		if err := e.Resume(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		if err := e.Resume(ctx, "nope"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("Resume of an unknown run = %v, want ErrNotFound", err)
		}
		waitInfo(t, e, "r", func(info durable.RunInfo) bool { return len(info.Pending) == 1 && info.Pending[0].Kind == "receive" })
		if err := durable.Send(ctx, e, "r", "go", 5); err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 5 {
			t.Fatalf("Result after Resume = %d, %v; want 5", got, err)
		}
		if err := e.Resume(ctx, "r"); !errors.Is(err, durable.ErrFinished) {
			t.Errorf("Resume of a finished run = %v, want ErrFinished", err)
		}
	})
}

// TestCancelParked cancels a parked run: it ends canceled, and its
// waiting parent gets the cancellation.
func TestCancelParked(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		var renamed atomic.Bool
		kid := durable.Define("op-cp-kid", func(ctx durable.Context, _ int) (int, error) {
			name := "a"
			if renamed.Load() {
				name = "b"
			}
			if _, err := durable.Step(ctx, name, func(context.Context) (int, error) { return 1, nil }); err != nil {
				return 0, err
			}
			return durable.Receive[int](ctx, "go")
		})
		parent := durable.Define("op-cp", func(ctx durable.Context, _ int) (int, error) {
			return durable.RunChild(ctx, kid, "cp/kid", 0)
		})
		cfg := &durable.Config{Workflows: []durable.Definition{kid, parent}}
		e := open(t, cfg)
		if _, err := durable.Start(ctx, e, parent, "cp", 0); err != nil {
			t.Fatal(err)
		}
		waitInfo(t, e, "cp/kid", waitsForMessage)
		e.Close()
		renamed.Store(true)
		e = open(t, cfg)
		if err := durable.Send(ctx, e, "cp/kid", "nudge", 0); err != nil { // loads it: it waits for a message
			t.Fatal(err)
		}
		waitStatus(t, e, "cp/kid", durable.StatusParked)
		if err := e.Cancel(ctx, "cp/kid"); err != nil {
			t.Fatal(err)
		}
		// At once, or (when a message had the parked run loaded again, to
		// park once more) as soon as that load parks it.
		if info := waitStatus(t, e, "cp/kid", durable.StatusCanceled); !errors.Is(info.Err, durable.ErrCanceled) {
			t.Fatalf("after Cancel: %v, want ErrCanceled", info.Err)
		}
		info := waitStatus(t, e, "cp", durable.StatusFailed)
		if !errors.Is(info.Err, durable.ErrCanceled) {
			t.Errorf("parent failed with %v, want the child's cancellation", info.Err)
		}
		if err := e.Cancel(ctx, "cp"); !errors.Is(err, durable.ErrFinished) {
			t.Errorf("Cancel of a failed run = %v, want ErrFinished", err)
		}
	})
}

// TestCancelAsItParks cancels a run whose code is live and about to
// diverge from its journal: the request reaches the executor, which then
// parks instead of acting on it. The run must end canceled all the same.
func TestCancelAsItParks(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		var renamed atomic.Bool
		hold, held := make(chan struct{}), make(chan struct{}, 1)
		wf := durable.Define("op-cap", func(ctx durable.Context, _ int) (int, error) {
			if _, err := durable.Step(ctx, "a", func(context.Context) (int, error) { return 1, nil }); err != nil {
				return 0, err
			}
			name := "b"
			if renamed.Load() {
				held <- struct{}{}
				<-hold // the test cancels here: replaying, before the divergence
				name = "b2"
			}
			if _, err := durable.Step(ctx, name, func(context.Context) (int, error) { return 2, nil }); err != nil {
				return 0, err
			}
			return durable.Receive[int](ctx, "go")
		})
		cfg := &durable.Config{Workflows: []durable.Definition{wf}}
		e := open(t, cfg)
		if _, err := durable.Start(ctx, e, wf, "cap", 0); err != nil {
			t.Fatal(err)
		}
		waitInfo(t, e, "cap", waitsForMessage)
		e.Close()
		renamed.Store(true)
		e = open(t, cfg)
		if err := durable.Send(ctx, e, "cap", "nudge", 0); err != nil { // loads it
			t.Fatal(err)
		}
		recv(t, held, "the replay of the changed code")
		if err := e.Cancel(ctx, "cap"); err != nil {
			t.Fatal(err)
		}
		close(hold)
		info := waitStatus(t, e, "cap", durable.StatusCanceled)
		if !errors.Is(info.Err, durable.ErrCanceled) {
			t.Errorf("run ended with %v, want ErrCanceled", info.Err)
		}
	})
}

// waitsForMessage is whether a run waits in a Receive: live (its pending
// operation says so), or evicted with its idle mark (with a cache of one
// run, the parent's load evicts its waiting child).
func waitsForMessage(info durable.RunInfo) bool {
	return len(info.Pending) == 1 && info.Pending[0].Kind == "receive" || info.Waiting == "a message"
}
