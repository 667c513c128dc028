package durable_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// An adaptive limit halves its concurrency each time an attempt fails with
// a retry.After hint (a 429 with Retry-After) and grows it back by one per
// IncreaseEvery successes, up to MaxConcurrent. Here the API refuses the
// first two calls.
func ExampleLimit_adaptive() {
	var e *durable.Engine
	refusals := 2
	pull := durable.Define("sync", func(ctx durable.Context, pages int) (int, error) {
		for i := range pages {
			_, err := durable.Step(ctx, fmt.Sprintf("page-%d", i), func(ctx context.Context) (int, error) {
				info, _ := durable.StepInfoFrom(ctx)
				fmt.Printf("page %d attempt %d: concurrency %d\n", i, info.Attempt, e.Stats().Limits["api"].Concurrency)
				if refusals > 0 { // the API answers 429 Too Many Requests, Retry-After: 0
					refusals--
					return 0, retry.After(errors.New("429 Too Many Requests"), 0)
				}
				return i, nil
			}, durable.WithLimit("api"), durable.WithRetry(retry.Policy{MaxAttempts: 5, Backoff: backoff.Constant(0)}))
			if err != nil {
				return 0, err
			}
		}
		return pages, nil
	})

	var err error
	e, err = durable.New(journal.NewMemory(), &durable.Config{
		Workflows: []durable.Definition{pull},
		Limits:    map[string]durable.Limit{"api": {MaxConcurrent: 4, Adaptive: true, IncreaseEvery: 1}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	fmt.Println(durable.Run(context.Background(), e, pull, "sync-1", 4))
	fmt.Println("concurrency at the end:", e.Stats().Limits["api"].Concurrency)
	// Output:
	// page 0 attempt 1: concurrency 4
	// page 0 attempt 2: concurrency 2
	// page 0 attempt 3: concurrency 1
	// page 1 attempt 1: concurrency 2
	// page 2 attempt 1: concurrency 3
	// page 3 attempt 1: concurrency 4
	// 4 <nil>
	// concurrency at the end: 4
}
