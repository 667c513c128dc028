package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
)

// TestQueueGlobalLimit: two engines, each on its own store (as two
// processes would be) on one schema, share a queue with
// GlobalConcurrency 3 and Concurrency 2 each: however the 24 runs started
// on both are admitted, never more than 3 execute at once (counted by the
// steps live inside them), though the engines could hold 4. A dedup key
// is refused across the engines while its run is active.
func TestQueueGlobalLimit(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	var live, peak atomic.Int32
	wf := durable.Define("pg-queue-work", func(ctx durable.Context, n int) (int, error) {
		return durable.Step(ctx, "work", func(context.Context) (int, error) {
			v := live.Add(1)
			defer live.Add(-1)
			for p := peak.Load(); v > p && !peak.CompareAndSwap(p, v); p = peak.Load() {
			}
			time.Sleep(40 * time.Millisecond) // work: other runs overlap it
			return 2 * n, nil
		})
	})
	var engines [2]*durable.Engine
	for i := range engines {
		s, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		e, err := durable.New(s, &durable.Config{
			Workflows: []durable.Definition{wf},
			Queues:    map[string]durable.Queue{"q": {Concurrency: 2, GlobalConcurrency: 3}},
			Logger:    slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		engines[i] = e
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard, not a timing assertion
	defer cancel()
	var hs []*durable.Handle[int]
	for i := range 24 {
		h, err := durable.Start(ctx, engines[i%2], wf, fmt.Sprintf("r%02d", i), i, durable.OnQueue("q"))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	// A dedup key held by a run started on one engine is refused on the
	// other.
	if _, err := durable.Start(ctx, engines[0], wf, "keyed", 100, durable.OnQueue("q"), durable.WithDedupKey("k")); err != nil {
		t.Fatal(err)
	}
	var de *durable.DuplicateError
	if _, err := durable.Start(ctx, engines[1], wf, "keyed-2", 100, durable.OnQueue("q"), durable.WithDedupKey("k")); !errors.As(err, &de) || de.RunID != "keyed" {
		t.Fatalf("Start with a key held through the other engine = %v, want a *DuplicateError naming keyed", err)
	}
	for i, h := range hs {
		got, err := h.Result(ctx)
		if err != nil || got != 2*i {
			t.Fatalf("run %d: %v, %v", i, got, err)
		}
	}
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d runs of the queue executed at once over two engines, more than its GlobalConcurrency 3", p)
	}
	t.Logf("peak: %d runs at once", peak.Load())
	qs, err := engines[0].Queues(ctx, 0)
	if err != nil || len(qs) != 1 || qs[0].Waiting != 0 {
		t.Errorf("Queues = %+v, %v, want q with none waiting", qs, err)
	}
}
