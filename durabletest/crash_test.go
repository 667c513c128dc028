package durabletest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/retry"
)

// Order is the README's workflow input.
type Order struct {
	Card, Address string
	Amount        int
}

// readmeOrder is the README's workflow: a charge with retries (the
// payment API fails the first attempt), a day's sleep, and shipping.
func readmeOrder() *durable.Workflow[Order, string] {
	return durable.Define("order", func(ctx durable.Context, o Order) (string, error) {
		charge, err := durable.Step(ctx, "charge", func(ctx context.Context) (string, error) {
			key, _ := durable.StepInfoFrom(ctx)
			if key.Attempt == 1 {
				return "", errors.New("503 Service Unavailable")
			}
			return fmt.Sprintf("ch-%d-%s", o.Amount, key.IdempotencyKey), nil
		}, durable.WithRetry(retry.Policy{MaxAttempts: 5}))
		if err != nil {
			return "", err
		}
		if err := durable.Sleep(ctx, 24*time.Hour); err != nil {
			return "", err
		}
		return durable.Step(ctx, "ship", func(ctx context.Context) (string, error) {
			return "shipped to " + o.Address + " with " + charge, nil
		})
	})
}

func TestCrashEveryStepREADME(t *testing.T) {
	t.Parallel()
	wf := readmeOrder()
	durabletest.CrashEveryStep(t, nil, wf, Order{Card: "4242", Address: "Main St 1", Amount: 42})
}

// fanOut asks three services at once, then ships with a child workflow.
var shipChild = durable.Define("ship-child", func(ctx durable.Context, n int) (string, error) {
	label, err := durable.Step(ctx, "label", func(context.Context) (string, error) { return fmt.Sprintf("LBL-%d", n), nil })
	if err != nil {
		return "", err
	}
	if err := durable.Sleep(ctx, time.Hour); err != nil {
		return "", err
	}
	return durable.Step(ctx, "book", func(context.Context) (string, error) { return label + "/booked", nil })
})

var fanOut = durable.Define("fan-out", func(ctx durable.Context, n int) (string, error) {
	var fs []*durable.Future[int]
	for i, name := range []string{"inventory", "pricing", "fraud"} {
		fs = append(fs, durable.Go(ctx, name, func(ctx context.Context) (int, error) {
			select { // the services answer in another order than asked
			case <-time.After(time.Duration(3-i) * time.Second):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			return n * (i + 1), nil
		}))
	}
	items := make([]durable.Awaitable, len(fs))
	for i, f := range fs {
		items[i] = f
	}
	if err := durable.AwaitAll(ctx, items...); err != nil {
		return "", err
	}
	sum := 0
	for _, f := range fs {
		v, _ := f.Get(ctx)
		sum += v
	}
	tracking, err := durable.RunChild(ctx, shipChild, "", sum)
	return fmt.Sprintf("%d %s", sum, tracking), err
})

func TestCrashEveryStepFanOutWithChild(t *testing.T) {
	t.Parallel()
	durabletest.CrashEveryStep(t, &durable.Config{Workflows: []durable.Definition{fanOut, shipChild}}, fanOut, 7)
}

// TestCrashEveryStepCatches: a workflow that keeps state outside the
// journal (a counter in memory) ends differently after a crash, and
// CrashEveryStep says so.
func TestCrashEveryStepCatches(t *testing.T) {
	t.Parallel()
	var n atomic.Int32 // survives the simulated crash, as a bug would not in production; the result shows it
	wf := durable.Define("leaky", func(ctx durable.Context, _ int) (int, error) {
		if _, err := durable.Step(ctx, "a", func(context.Context) (int, error) { return 1, nil }); err != nil {
			return 0, err
		}
		runs := int(n.Add(1)) // not journaled: counts how often the function ran
		if _, err := durable.Step(ctx, "b", func(context.Context) (int, error) { return 2, nil }); err != nil {
			return 0, err
		}
		return runs, nil
	})
	r := &recorder{TB: t}
	durabletest.CrashEveryStep(r, nil, wf, 0)
	if len(r.errs) == 0 {
		t.Fatal("CrashEveryStep found nothing wrong with a workflow whose result counts its replays")
	}
	if !strings.Contains(r.errs[0], "the run ended with") || !strings.Contains(r.errs[0], "commit") {
		t.Errorf("report: %s", r.errs[0])
	}
	t.Logf("what CrashEveryStep reports:\n%s", strings.Join(r.errs, "\n"))
}
