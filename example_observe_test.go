package durable_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

func ExampleLogger() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable output
			}
			return a
		},
	}))
	charge := durable.Define("charge", func(ctx durable.Context, cents int) (string, error) {
		log := durable.Logger(ctx) // silent while the run replays
		log.Info("charging", "cents", cents)
		id, err := durable.Step(ctx, "charge", func(context.Context) (string, error) { return "ch_1", nil })
		log.Info("charged", "charge", id)
		return id, err
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{charge}, Logger: logger})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	out, err := durable.Run(context.Background(), e, charge, "c-1", 500)
	fmt.Println(out, err)
	// Output:
	// level=INFO msg=charging run_id=c-1 workflow=charge cents=500 position=0
	// level=INFO msg=charged run_id=c-1 workflow=charge charge=ch_1 position=1
	// ch_1 <nil>
}

// countingObserver counts step attempts; it embeds BaseObserver for the
// events it does not handle.
type countingObserver struct {
	durable.BaseObserver
	attempts, replayed int
}

func (o *countingObserver) StepFinished(_ context.Context, ev durable.StepEvent) {
	if ev.Replayed {
		o.replayed++
	} else {
		o.attempts++
	}
}

func ExampleObserver() {
	obs := &countingObserver{}
	double := durable.Define("double", func(ctx durable.Context, n int) (int, error) {
		return durable.Step(ctx, "double", func(context.Context) (int, error) { return 2 * n, nil })
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{double}, Observer: obs})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	out, err := durable.Run(context.Background(), e, double, "d-1", 21)
	fmt.Println(out, err, "attempts:", obs.attempts)
	// Output: 42 <nil> attempts: 1
}
