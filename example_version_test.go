package durable_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// A run started on the old code, stopped between its two steps, resumes
// on code with a fraud check behind Version: it passed that point, so it
// keeps the old path; a new run takes the new one.
func ExampleVersion() {
	ctx := context.Background()
	store := journal.NewMemory()
	quiet := slog.New(slog.DiscardHandler)
	step := func(ctx durable.Context, name string) {
		_, _ = durable.Step(ctx, name, func(context.Context) (string, error) {
			fmt.Printf("  %s: %s\n", ctx.RunID(), name)
			return name, nil
		})
	}

	oldCode := durable.Define("order", func(ctx durable.Context, _ int) (int, error) {
		step(ctx, "reserve")
		step(ctx, "charge")
		_, err := durable.Receive[bool](ctx, "ship") // the run waits here
		return durable.DefaultVersion, err
	})
	fmt.Println("old code:")
	e, _ := durable.New(store, &durable.Config{Workflows: []durable.Definition{oldCode}, Logger: quiet})
	_, _ = durable.Start(ctx, e, oldCode, "o-1", 0)
	for info, _ := e.Get(ctx, "o-1"); len(info.Pending) == 0 || info.Pending[0].Kind != "receive"; info, _ = e.Get(ctx, "o-1") {
		time.Sleep(time.Millisecond) // until the run waits for "ship"
	}
	e.Close() // a deploy

	newCode := durable.Define("order", func(ctx durable.Context, _ int) (int, error) {
		step(ctx, "reserve")
		v := durable.Version(ctx, "fraud-check", durable.DefaultVersion, 1)
		if v >= 1 {
			step(ctx, "fraud-check")
		}
		step(ctx, "charge")
		_, err := durable.Receive[bool](ctx, "ship")
		return v, err
	})
	fmt.Println("new code:")
	e, _ = durable.New(store, &durable.Config{Workflows: []durable.Definition{newCode}, Logger: quiet})
	defer e.Close()
	_ = durable.Send(ctx, e, "o-1", "ship", true)
	v1, _ := durable.Run(ctx, e, newCode, "o-1", 0)
	h, _ := durable.Start(ctx, e, newCode, "o-2", 0)
	_ = durable.Send(ctx, e, "o-2", "ship", true)
	v2, _ := h.Result(ctx)
	fmt.Println("o-1 took version", v1, "and o-2 version", v2)
	// Output:
	// old code:
	//   o-1: reserve
	//   o-1: charge
	// new code:
	//   o-2: reserve
	//   o-2: fraud-check
	//   o-2: charge
	// o-1 took version -1 and o-2 version 1
}
