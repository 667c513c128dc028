package durable_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

// StartAfter creates the run now and begins it later: the start time is
// journaled, so a restart in between changes nothing.
func ExampleStartAfter() {
	clock := durabletest.NewClock(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	reminder := durable.Define("reminder", func(ctx durable.Context, to string) (string, error) {
		return fmt.Sprintf("reminded %s at %s", to, durable.Now(ctx).Format("15:04")), nil
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{Clock: clock, Workflows: []durable.Definition{reminder}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	ctx := context.Background()
	h, err := durable.Start(ctx, e, reminder, "remind-bob", "bob", durable.StartAfter(2*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	info, _ := e.Get(ctx, "remind-bob")
	fmt.Println(info.Status, "until", info.WakeAt.Format("15:04"))
	clock.Advance(2 * time.Hour)
	out, err := h.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	// Output:
	// running until 11:00
	// reminded bob at 11:00
}
