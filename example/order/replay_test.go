package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
)

// testdata/orders.journal is the journal of `go run ./example/order
// -journal example/order/testdata/orders.journal`: two orders, one
// shipped and one compensated, each with its shipping child. Replaying
// it checks that a change to these workflows keeps the runs of the code
// before it working. Write it again (and review the diff of the
// workflows) only when a change is meant to break old runs.
const ordersJournal = "testdata/orders.journal"

func TestReplayOrdersJournal(t *testing.T) {
	durabletest.Replay(t, ordersJournal, order, shipping)
}

// errorsOf is a testing.TB that keeps the errors reported to it.
type errorsOf struct {
	testing.TB
	errs []string
}

func (r *errorsOf) Error(args ...any)                 { r.errs = append(r.errs, fmt.Sprint(args...)) }
func (r *errorsOf) Errorf(format string, args ...any) { r.Error(fmt.Sprintf(format, args...)) }
func (r *errorsOf) Fatalf(format string, args ...any) { r.Errorf(format, args...) }

// TestReplayCatchesAChange replays the journal against an order workflow
// whose fan-out asks for the fraud check before pricing: every order run
// passed that point, so each would park, and Replay says where.
func TestReplayCatchesAChange(t *testing.T) {
	changed := durable.Define("order", func(ctx durable.Context, o Order) (string, error) {
		inventory := durable.Go(ctx, "inventory", func(context.Context) (int, error) { return 0, nil })
		fraud := durable.Go(ctx, "fraud-check", func(context.Context) (bool, error) { return true, nil })
		if err := durable.AwaitAll(ctx, inventory, fraud); err != nil {
			return "", err
		}
		return "", nil
	})
	r := &errorsOf{TB: t}
	durabletest.Replay(r, ordersJournal, changed, shipping)
	if len(r.errs) != 2 {
		t.Fatalf("Replay reported %d errors, want 2 (one per order run): %q", len(r.errs), r.errs)
	}
	for _, e := range r.errs {
		for _, want := range []string{"position 1", `- journal: step "pricing"`, `+ code:    called step "fraud-check"`, "replay_test.go:"} {
			if !strings.Contains(e, want) {
				t.Errorf("report does not contain %q:\n%s", want, e)
			}
		}
	}
}
