package durable_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// liveCounter counts the steps executing at once and keeps the highest
// count seen.
type liveCounter struct{ now, peak atomic.Int32 }

func (c *liveCounter) enter() {
	n := c.now.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (c *liveCounter) leave() { c.now.Add(-1) }

// A queue with Concurrency 3 never runs more than 3 of its runs at once,
// counted by the steps live inside them, though 30 are started at once;
// each run holds its slot across a durable sleep (evicted or not), and
// every run completes.
func TestQueueConcurrencyNeverExceeded(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		synctest.Test(t, func(t *testing.T) {
			var live liveCounter
			var inRun liveCounter // runs between their first step and their last
			wf := durable.Define("q-work", func(ctx durable.Context, n int) (int, error) {
				if _, err := durable.Step(ctx, "begin", func(context.Context) (int, error) {
					inRun.enter()
					live.enter()
					defer live.leave()
					time.Sleep(time.Second)
					return 0, nil
				}); err != nil {
					return 0, err
				}
				if err := durable.Sleep(ctx, time.Minute); err != nil {
					return 0, err
				}
				return durable.Step(ctx, "end", func(context.Context) (int, error) {
					live.enter()
					defer live.leave()
					defer inRun.leave()
					time.Sleep(time.Second)
					return 2 * n, nil
				})
			})
			cfg := &durable.Config{Workflows: []durable.Definition{wf}, Queues: map[string]durable.Queue{"work": {Concurrency: 3}}}
			e := open(t, cfg)
			var hs []*durable.Handle[int]
			for i := range 30 {
				h, err := durable.Start(t.Context(), e, wf, fmt.Sprintf("r%02d", i), i, durable.OnQueue("work"))
				if err != nil {
					t.Fatal(err)
				}
				hs = append(hs, h)
			}
			for i, h := range hs {
				got, err := h.Result(t.Context())
				if err != nil || got != 2*i {
					t.Fatalf("run %d: %v, %v", i, got, err)
				}
			}
			if p := inRun.peak.Load(); p != 3 {
				t.Errorf("at most %d runs were between their steps at once, want 3 (the queue's Concurrency)", p)
			}
			if p := live.peak.Load(); p > 3 {
				t.Errorf("%d steps of the queue's runs executed at once, more than its Concurrency 3", p)
			}
		})
	})
}

// Runs are admitted by priority, higher first, and in the order they were
// started within a priority; RunInfo shows the queue and the position.
func TestQueuePriorityOrder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		synctest.Test(t, func(t *testing.T) {
			var mu sync.Mutex
			var order []string
			wf := durable.Define("q-order", func(ctx durable.Context, _ struct{}) (struct{}, error) {
				mu.Lock()
				order = append(order, ctx.RunID())
				mu.Unlock()
				return durable.Receive[struct{}](ctx, "go")
			})
			cfg := &durable.Config{Workflows: []durable.Definition{wf}, Queues: map[string]durable.Queue{"one": {Concurrency: 1}}}
			e := open(t, cfg)
			ctx := t.Context()
			start := func(id string, p int) {
				t.Helper()
				if _, err := durable.Start(ctx, e, wf, id, struct{}{}, durable.OnQueue("one"), durable.WithPriority(p)); err != nil {
					t.Fatal(err)
				}
			}
			start("first", 0) // takes the only slot
			synctest.Wait()
			for _, r := range []struct {
				id string
				p  int
			}{{"low-a", 0}, {"high-a", 10}, {"low-b", 0}, {"mid", 5}, {"high-b", 10}, {"neg", -1}} {
				start(r.id, r.p)
			}
			synctest.Wait()
			want := []string{"first", "high-a", "high-b", "mid", "low-a", "low-b", "neg"}
			for i, id := range want[1:] {
				info := mustGet(t, e, id)
				if info.Queue != "one" || !info.Queued || info.QueuePosition != i+1 || info.Status != durable.StatusRunning {
					t.Errorf("Get(%s): Queue %q Queued %v QueuePosition %d Status %v, want one, true, %d, running", id, info.Queue, info.Queued, info.QueuePosition, info.Status, i+1)
				}
			}
			qs, err := e.Queues(ctx, -1)
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) != 1 || qs[0].Name != "one" || qs[0].Running != 1 || qs[0].Waiting != 6 || len(qs[0].Next) != 6 || qs[0].Next[0].ID != "high-a" || qs[0].Next[5].Position != 6 {
				t.Errorf("Queues = %+v, want one queue, 1 running, 6 waiting, high-a next", qs)
			}
			for _, id := range want {
				if err := durable.Send(ctx, e, id, "go", struct{}{}); err != nil {
					t.Fatal(err)
				}
				waitStatus(t, e, id, durable.StatusCompleted)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(order, want) {
				t.Errorf("admission order %q, want %q", order, want)
			}
			if info := mustGet(t, e, "neg"); info.Queued || info.QueuePosition != 0 || info.Queue != "one" || info.Priority != -1 {
				t.Errorf("Get(neg) after it ran: %+v", info)
			}
		})
	})
}

// A dedup key refuses a second start while the run that holds it is
// active (waiting in its queue, then running), names that run, stores
// nothing, and accepts a start again once the run finished.
func TestQueueDedupKey(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		synctest.Test(t, func(t *testing.T) {
			wf := durable.Define("q-dedup", func(ctx durable.Context, in string) (string, error) {
				return durable.Receive[string](ctx, "go")
			})
			cfg := &durable.Config{Workflows: []durable.Definition{wf}, Queues: map[string]durable.Queue{"mail": {Concurrency: 1}}}
			e := open(t, cfg)
			ctx := t.Context()
			key := durable.WithDedupKey("user-7")
			if _, err := durable.Start(ctx, e, wf, "blocker", "", durable.OnQueue("mail")); err != nil {
				t.Fatal(err)
			}
			h1, err := durable.Start(ctx, e, wf, "a", "", durable.OnQueue("mail"), key)
			if err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			refused := func(when string) {
				t.Helper()
				_, err := durable.Start(ctx, e, wf, "b", "", durable.OnQueue("mail"), key)
				var de *durable.DuplicateError
				if !errors.As(err, &de) || de.RunID != "a" || de.Key != "user-7" || de.Queue != "mail" || !errors.Is(err, durable.ErrDuplicate) {
					t.Fatalf("Start(b) with the key of %s run a = %v, want a *DuplicateError naming a", when, err)
				}
				if _, err := e.Get(ctx, "b"); !errors.Is(err, durable.ErrNotFound) {
					t.Fatalf("refused run b: Get = %v, want ErrNotFound (nothing stored)", err)
				}
			}
			refused("waiting")
			if info := mustGet(t, e, "a"); info.DedupKey != "user-7" || info.QueuePosition != 1 {
				t.Errorf("Get(a) = %+v, want its dedup key and position 1", info)
			}
			// Another key, or the same key on another queue (no queue): free.
			if _, err := durable.Start(ctx, e, wf, "c", "", durable.OnQueue("mail"), durable.WithDedupKey("user-8")); err != nil {
				t.Errorf("Start with another key = %v", err)
			}
			if _, err := durable.Start(ctx, e, wf, "d", "", key); err != nil {
				t.Errorf("Start of a run on no queue with the key = %v", err)
			}
			if err := durable.Send(ctx, e, "blocker", "go", ""); err != nil {
				t.Fatal(err)
			}
			waitInfo(t, e, "a", func(i durable.RunInfo) bool { return !i.Queued })
			refused("running")
			if err := durable.Send(ctx, e, "a", "go", "done"); err != nil {
				t.Fatal(err)
			}
			if got, err := h1.Result(ctx); err != nil || got != "done" {
				t.Fatalf("run a: %q, %v", got, err)
			}
			h2, err := durable.Start(ctx, e, wf, "b", "", durable.OnQueue("mail"), key)
			if err != nil {
				t.Fatalf("Start(b) after a finished = %v, want it accepted", err)
			}
			for _, id := range []string{"c", "d", "b"} {
				if err := durable.Send(ctx, e, id, "go", id); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := h2.Result(ctx); err != nil || got != "b" {
				t.Fatalf("run b: %q, %v", got, err)
			}
		})
	})
}

// A run waiting in a queue survives a restart (close and reopen a bbolt
// file) without being loaded, and is admitted once the slot frees.
func TestQueueWaitingRunSurvivesRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var calls sync.Map // run id → *atomic.Int32
		wf := durable.Define("q-restart", func(ctx durable.Context, _ struct{}) (string, error) {
			n, _ := calls.LoadOrStore(ctx.RunID(), new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			return durable.Receive[string](ctx, "go")
		})
		cfg := quiet(&durable.Config{Workflows: []durable.Definition{wf}, Queues: map[string]durable.Queue{"q": {Concurrency: 1}}})
		path := filepath.Join(t.TempDir(), "journal.db")
		e, err := durable.Open(path, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		for _, id := range []string{"holder", "waiter"} {
			if _, err := durable.Start(ctx, e, wf, id, struct{}{}, durable.OnQueue("q")); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		mustClose(t, e)
		e, err = durable.Open(path, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		synctest.Wait()
		if _, ok := calls.Load("waiter"); ok {
			t.Fatal("the waiting run was called before it was admitted")
		}
		if info := mustGet(t, e, "waiter"); !info.Queued || info.QueuePosition != 1 || info.Waiting == "" {
			t.Fatalf("after the restart: Get(waiter) = Queued %v, QueuePosition %d, Waiting %q; want queued at 1", info.Queued, info.QueuePosition, info.Waiting)
		}
		h, err := durable.Attach(ctx, e, wf, "waiter")
		if err != nil {
			t.Fatal(err)
		}
		if err := durable.Send(ctx, e, "holder", "go", "x"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, e, "holder", durable.StatusCompleted)
		waitInfo(t, e, "waiter", func(i durable.RunInfo) bool { return !i.Queued })
		if err := durable.Send(ctx, e, "waiter", "go", "admitted"); err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != "admitted" {
			t.Fatalf("waiter: %q, %v", got, err)
		}
		n, _ := calls.Load("holder")
		if c := n.(*atomic.Int32).Load(); c != 2 {
			t.Errorf("holder called %d times, want 2 (before and after the restart)", c)
		}
	})
}

// A run canceled while it waits in its queue ends canceled without being
// called, and frees nothing it did not hold.
func TestQueueCancelWaiting(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		synctest.Test(t, func(t *testing.T) {
			var calls atomic.Int32
			wf := durable.Define("q-cancel", func(ctx durable.Context, _ struct{}) (struct{}, error) {
				calls.Add(1)
				return durable.Receive[struct{}](ctx, "go")
			})
			cfg := &durable.Config{Workflows: []durable.Definition{wf}, Queues: map[string]durable.Queue{"q": {Concurrency: 1}}}
			e := open(t, cfg)
			ctx := t.Context()
			if _, err := durable.Start(ctx, e, wf, "holder", struct{}{}, durable.OnQueue("q")); err != nil {
				t.Fatal(err)
			}
			h, err := durable.Start(ctx, e, wf, "waiter", struct{}{}, durable.OnQueue("q"), durable.WithDedupKey("k"))
			if err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if err := e.Cancel(ctx, "waiter"); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
				t.Fatalf("Result of a run canceled in its queue = %v, want ErrCanceled", err)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("workflow called %d times, want 1 (the holder only)", n)
			}
			// Its key is free, and the holder still holds the only slot.
			if _, err := durable.Start(ctx, e, wf, "again", struct{}{}, durable.OnQueue("q"), durable.WithDedupKey("k")); err != nil {
				t.Fatalf("Start with the canceled run's key = %v", err)
			}
			synctest.Wait()
			if info := mustGet(t, e, "again"); !info.Queued || info.QueuePosition != 1 {
				t.Fatalf("Get(again) = Queued %v position %d, want waiting at 1", info.Queued, info.QueuePosition)
			}
		})
	})
}

// A rate admits runs at the pace it says, in virtual time.
func TestQueueRate(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var starts []time.Time
		wf := durable.Define("q-rate", func(ctx durable.Context, _ struct{}) (struct{}, error) {
			now := durable.Now(ctx)
			mu.Lock()
			starts = append(starts, now)
			mu.Unlock()
			return struct{}{}, nil
		})
		e, err := durable.New(journal.NewMemory(), quiet(&durable.Config{Workflows: []durable.Definition{wf}, Queues: map[string]durable.Queue{"slow": {Rate: 2, Burst: 1}}}))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		t0 := time.Now()
		var hs []*durable.Handle[struct{}]
		for i := range 5 {
			h, err := durable.Start(t.Context(), e, wf, fmt.Sprint(i), struct{}{}, durable.OnQueue("slow"))
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		for _, h := range hs {
			if _, err := h.Result(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
		for i, s := range starts {
			if want := t0.Add(time.Duration(i) * 500 * time.Millisecond); s.Before(want) {
				t.Errorf("run %d started at +%v, before +%v (2 per second)", i, s.Sub(t0), want.Sub(t0))
			}
		}
		if last := starts[len(starts)-1].Sub(t0); last > 3*time.Second {
			t.Errorf("the last of 5 runs at 2/s started at +%v, want about +2s", last)
		}
	})
}

// Bad queue options are refused with ErrInvalid before anything is
// stored; bad Config.Queues fail New.
func TestQueueBadInput(t *testing.T) {
	t.Parallel()
	wf := durable.Define("q-bad", func(ctx durable.Context, _ struct{}) (struct{}, error) { return struct{}{}, nil })
	e, err := durable.New(journal.NewMemory(), quiet(&durable.Config{Workflows: []durable.Definition{wf}, Queues: map[string]durable.Queue{"q": {}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for name, opts := range map[string][]durable.StartOption{
		"unknown queue":        {durable.OnQueue("nope")},
		"queue and start time": {durable.OnQueue("q"), durable.StartAfter(time.Hour)},
		"priority, no queue":   {durable.WithPriority(3)},
		"huge priority":        {durable.OnQueue("q"), durable.WithPriority(1 << 40)},
		"dedup key with NUL":   {durable.WithDedupKey("a\x00b")},
	} {
		if _, err := durable.Start(t.Context(), e, wf, "r", struct{}{}, opts...); !errors.Is(err, durable.ErrInvalid) {
			t.Errorf("%s: Start = %v, want ErrInvalid", name, err)
		}
		if _, err := e.Get(t.Context(), "r"); !errors.Is(err, durable.ErrNotFound) {
			t.Fatalf("%s: the refused run was stored", name)
		}
	}
	for name, qs := range map[string]map[string]durable.Queue{
		"negative concurrency": {"q": {Concurrency: -1}},
		"negative rate":        {"q": {Rate: -1}},
		"empty name":           {"": {}},
	} {
		if _, err := durable.New(journal.NewMemory(), &durable.Config{Queues: qs}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// Concurrent starts with one dedup key (and different ids) create one
// run; every other start gets a *DuplicateError naming it.
func TestQueueDedupConcurrentStarts(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		wf := durable.Define("q-dedup-race", func(ctx durable.Context, _ int) (string, error) {
			return durable.Receive[string](ctx, "go")
		})
		e := open(t, &durable.Config{Workflows: []durable.Definition{wf}, Queues: map[string]durable.Queue{"q": {Concurrency: 2}}})
		const n = 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		var created []string
		holders := map[string]int{}
		for i := range n {
			wg.Go(func() {
				id := fmt.Sprintf("r%02d", i)
				_, err := durable.Start(t.Context(), e, wf, id, i, durable.OnQueue("q"), durable.WithDedupKey("same"))
				var de *durable.DuplicateError
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created = append(created, id)
				case errors.As(err, &de):
					holders[de.RunID]++
				default:
					t.Errorf("Start(%s) = %v", id, err)
				}
			})
		}
		wg.Wait()
		if len(created) != 1 || holders[created[0]] != n-1 {
			t.Fatalf("%d starts with one key: created %q, refusals naming %v; want one run, the other %d refused naming it", n, created, holders, n-1)
		}
		page, err := e.List(t.Context(), durable.ListOptions{Workflow: "q-dedup-race"})
		if err != nil || len(page.Runs) != 1 {
			t.Fatalf("List = %d runs, %v; want 1", len(page.Runs), err)
		}
	})
}
