package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// WithCancel cancels part of a workflow: ask two suppliers at once, take
// the first answer, and cancel the other request and the deadline timer.
// The run goes on.
func ExampleWithCancel() {
	quote := durable.Define("quote", func(ctx durable.Context, item string) (string, error) {
		ctxB, cancelB := durable.WithCancel(ctx)
		defer cancelB()
		a := durable.Go(ctx, "supplier-a", func(context.Context) (string, error) {
			return "12 EUR", nil
		})
		b := durable.Go(ctxB, "supplier-b", func(ctx context.Context) (string, error) {
			<-ctx.Done() // a slow supplier: canceled before it answers
			return "", ctx.Err()
		})
		deadline := durable.NewTimer(ctx, time.Hour)
		if i, err := durable.AwaitAny(ctx, a, b, deadline); err != nil || i != 0 {
			return "", fmt.Errorf("supplier a did not answer first: %d, %v", i, err)
		}
		cancelB()            // everything begun under ctxB
		deadline.Cancel(ctx) // one timer
		_, errB := b.Get(ctx)
		price, err := a.Get(ctx)
		return fmt.Sprintf("%s: %s; supplier b canceled: %v; deadline canceled: %v",
			item, price, errors.Is(errB, durable.ErrCanceled), errors.Is(deadline.Err(), durable.ErrCanceled)), err
	})
	store := journal.NewMemory()
	e, err := durable.New(store, &durable.Config{Workflows: []durable.Definition{quote}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	out, err := durable.Run(context.Background(), e, quote, "quote-1", "tea")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	evs, err := durable.History(context.Background(), store, "quote-1")
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == "cancel" {
			fmt.Printf("%s %q %s\n", ev.Kind, ev.Name, ev.What)
		}
	}
	// Output:
	// tea: 12 EUR; supplier b canceled: true; deadline canceled: true
	// cancel "scope 1" requested
	// cancel "position 2" requested
}
