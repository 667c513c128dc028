package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

// A long-lived workflow keeps its history short: when its epoch holds a
// few operations it continues as new with its state, under the same id.
// The caller waits for the final result; the history shows the last epoch.
func ExampleContinueAsNew() {
	store := journal.NewMemory()
	e, err := durable.New(store, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	type tally struct{ Total, Batches int }
	summer := durable.Define("summer", func(ctx durable.Context, s tally) (string, error) {
		for s.Batches < 9 {
			if durable.WorkflowInfoFrom(ctx).Positions == 3 {
				return "", durable.ContinueAsNew(ctx, s)
			}
			n, err := durable.Step(ctx, "fetch", func(context.Context) (int, error) {
				return s.Batches + 1, nil // the size of the next batch
			})
			if err != nil {
				return "", err
			}
			s.Total += n
			s.Batches++
		}
		return fmt.Sprintf("total %d after %d batches, in epoch %d", s.Total, s.Batches, durable.WorkflowInfoFrom(ctx).Epoch), nil
	})

	ctx := context.Background()
	out, err := durable.Run(ctx, e, summer, "summer-1", tally{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	events, err := durable.History(ctx, store, "summer-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(events), "events in the history of the last epoch")
	// Output:
	// total 45 after 9 batches, in epoch 2
	// 3 events in the history of the last epoch
}

// History reads a run's journal, with no workflow code needed: here a
// step, a day's sleep and a journaled clock reading.
func ExampleHistory() {
	store := journal.NewMemory()
	clock := durabletest.NewClock(time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC))
	order := durable.Define("order", func(ctx durable.Context, item string) (string, error) {
		id, err := durable.Step(ctx, "reserve", func(context.Context) (string, error) {
			return item + "-42", nil
		})
		if err != nil {
			return "", err
		}
		if err := durable.Sleep(ctx, 24*time.Hour); err != nil {
			return "", err
		}
		return id + " shipped on " + durable.Now(ctx).Format(time.DateOnly), nil
	})
	e, err := durable.New(store, &durable.Config{Clock: clock, Workflows: []durable.Definition{order}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	ctx := context.Background()
	h, err := durable.Start(ctx, e, order, "order-1", "book")
	if err != nil {
		log.Fatal(err)
	}
	// Wait until the run sleeps, then let the day pass.
	for info, _ := e.Get(ctx, "order-1"); info.WakeAt.IsZero(); info, _ = e.Get(ctx, "order-1") {
		time.Sleep(time.Millisecond)
	}
	clock.Advance(24 * time.Hour)
	out, err := h.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)

	events, err := durable.History(ctx, store, "order-1")
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range events {
		fmt.Println(ev)
	}
	// Output:
	// book-42 shipped on 2024-01-02
	//    0.0  step    "reserve"  completed: "book-42"
	//    1.0  sleep    waiting until 2024-01-02T09:00:00Z
	//    1.1  sleep    completed
	//    2.0  now      read clock 2024-01-02T09:00:00Z
}

// Purge deletes the runs that finished before a time, here those older
// than a day. With a negative Config.Retention the engine deletes nothing
// on its own.
func ExampleEngine_Purge() {
	clock := durabletest.NewClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	e, err := durable.New(journal.NewMemory(), &durable.Config{Clock: clock, Retention: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	greet := durable.Define("greet", func(ctx durable.Context, name string) (string, error) {
		return "hello " + name, nil
	})

	ctx := context.Background()
	for _, id := range []string{"old-1", "old-2"} {
		if _, err := durable.Run(ctx, e, greet, id, "bob"); err != nil {
			log.Fatal(err)
		}
	}
	clock.Advance(48 * time.Hour)
	if _, err := durable.Run(ctx, e, greet, "new-1", "ann"); err != nil {
		log.Fatal(err)
	}

	n, err := e.Purge(ctx, clock.Now().Add(-24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted", n, "runs")
	for _, id := range []string{"old-1", "old-2", "new-1"} {
		if _, err := e.Get(ctx, id); errors.Is(err, durable.ErrNotFound) {
			fmt.Println(id, "deleted")
		} else {
			fmt.Println(id, "kept")
		}
	}
	// Output:
	// deleted 2 runs
	// old-1 deleted
	// old-2 deleted
	// new-1 kept
}
