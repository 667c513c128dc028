// Package dashdemo is the application behind example/dashboard and the
// dashboard's browser tests: an engine on a bbolt file with runs in every
// state a dashboard must show.
package dashdemo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

// Decision is the message the approval workflow waits for.
type Decision struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"`
}

// badDeploy switches the signup workflow to the code of a bad deploy
// that renamed a step: replaying a run recorded with the old name parks
// it.
var badDeploy atomic.Bool

var (
	order = durable.Define("order", func(ctx durable.Context, id int) (string, error) {
		for _, name := range []string{"reserve-stock", "charge-card", "ship"} {
			if _, err := durable.Step(ctx, name, func(context.Context) (string, error) { return fmt.Sprintf("%s-%d-ok", name, id), nil }); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("order %d shipped", id), nil
	})

	signup = durable.Define("signup", func(ctx durable.Context, email string) (string, error) {
		name := "create-account"
		if badDeploy.Load() {
			name = "create_account" // the bad deploy's rename
		}
		if _, err := durable.Step(ctx, name, func(context.Context) (string, error) { return "acct-" + email, nil }); err != nil {
			return "", err
		}
		if err := durable.Sleep(ctx, 500*time.Millisecond); err != nil {
			return "", err
		}
		return durable.Step(ctx, "send-welcome", func(context.Context) (string, error) { return "welcome sent to " + email, nil })
	})

	approval = durable.Define("approval", func(ctx durable.Context, doc string) (string, error) {
		d, err := durable.ReceiveTimeout[Decision](ctx, "decision", 72*time.Hour)
		if err != nil {
			return "", err
		}
		if !d.Approved {
			return doc + " rejected by " + d.By, nil
		}
		return doc + " approved by " + d.By, nil
	})

	reminder = durable.Define("reminder", func(ctx durable.Context, who string) (string, error) {
		if err := durable.Sleep(ctx, 6*time.Hour); err != nil {
			return "", err
		}
		return durable.Step(ctx, "remind", func(context.Context) (string, error) { return "reminded " + who, nil })
	})

	sync_ = durable.Define("sync-crm", func(ctx durable.Context, account string) (int, error) {
		return durable.Step(ctx, "call-crm-api", func(context.Context) (int, error) {
			return 0, errors.New("POST https://crm.example/api/accounts: 503 Service Unavailable")
		}, durable.WithRetry(retry.Policy{MaxAttempts: 1000, Backoff: backoff.Constant(45 * time.Second)}))
	})

	export = durable.Define("export", func(ctx durable.Context, month string) (string, error) {
		return durable.Step(ctx, "render-report", func(ctx context.Context) (string, error) {
			select { // a long step: it runs until it is canceled or the app stops
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(time.Hour):
				return "report-" + month + ".pdf", nil
			}
		})
	})

	chargeCard = durable.Define("charge-card", func(ctx durable.Context, cents int) (string, error) {
		return durable.Step(ctx, "charge", func(context.Context) (string, error) {
			return "", retry.Permanent(errors.New("card declined: insufficient funds"))
		})
	})

	checkout = durable.Define("checkout", func(ctx durable.Context, cents int) (string, error) {
		if _, err := durable.Step(ctx, "validate-cart", func(context.Context) (bool, error) { return true, nil }); err != nil {
			return "", err
		}
		return durable.RunChild(ctx, chargeCard, "", cents)
	})

	shipment = durable.Define("shipment", func(ctx durable.Context, parcel int) (string, error) {
		if parcel == 3 {
			ok, err := durable.Receive[bool](ctx, "picked-up")
			if err != nil || !ok {
				return "", err
			}
		}
		return durable.Step(ctx, "book-courier", func(context.Context) (string, error) { return fmt.Sprintf("parcel %d booked", parcel), nil })
	})

	fanout = durable.Define("fanout", func(ctx durable.Context, _ int) (int, error) {
		var fs []durable.Awaitable
		for i := 1; i <= 3; i++ {
			fs = append(fs, durable.StartChild(ctx, shipment, "", i))
		}
		if err := durable.AwaitAll(ctx, fs...); err != nil {
			return 0, err
		}
		return 3, nil
	})
)

// Workflows are the workflows of the demo application.
var Workflows = []durable.Definition{order, signup, approval, reminder, sync_, export, chargeCard, checkout, shipment, fanout}

// Open opens the engine on the journal at path and makes runs in every
// state: completed orders, a failed checkout (a child's step failed), a
// parked signup (a bad deploy renamed a step; the fix is deployed, so
// Resume finishes it), an approval waiting for a message, sleeping
// reminders (one canceled), a CRM sync retrying, an export executing on
// the queue "reports" (one slot) with two reports waiting behind it, and
// a fan-out waiting for one of its children. It waits until they got
// there. Run ids are fixed, so opening an existing journal again adds
// nothing.
func Open(ctx context.Context, path string, log *slog.Logger) (*durable.Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := &durable.Config{Workflows: Workflows, Logger: log, Queues: map[string]durable.Queue{"reports": {Concurrency: 1}}}
	e, err := durable.Open(path, cfg)
	if err != nil {
		return nil, err
	}
	fresh := false
	if _, err := e.Get(ctx, "signup-ada"); errors.Is(err, durable.ErrNotFound) {
		fresh = true
		// The signup runs under the old code, then the engine restarts
		// with the bad deploy: replay parks the run.
		if _, err := durable.Start(ctx, e, signup, "signup-ada", "ada@example.com"); err != nil {
			return nil, err
		}
		if err := waitFor(ctx, e, "signup-ada", func(info durable.RunInfo) bool {
			return len(info.Pending) > 0 && info.Pending[0].Kind == "sleep"
		}); err != nil {
			return nil, err
		}
		e.Close()
		badDeploy.Store(true)
		if e, err = durable.Open(path, cfg); err != nil {
			return nil, err
		}
		if err := waitFor(ctx, e, "signup-ada", func(info durable.RunInfo) bool { return info.Status == durable.StatusParked }); err != nil {
			return nil, err
		}
	}
	badDeploy.Store(false) // the fix is deployed: Resume finishes the parked run
	if !fresh {
		return e, nil
	}
	starts := []func() error{
		func() error { return run(ctx, e, order, "order-1001", 1001) },
		func() error { return run(ctx, e, order, "order-1002", 1002) },
		func() error { return run(ctx, e, order, "order-1003", 1003) },
		func() error { return start(ctx, e, checkout, "checkout-77", 4999) },
		func() error { return start(ctx, e, approval, "approval-q3-budget", "Q3 budget") },
		func() error { return start(ctx, e, reminder, "reminder-bob", "bob") },
		func() error { return start(ctx, e, reminder, "reminder-carol", "carol") },
		func() error { return start(ctx, e, sync_, "sync-crm-acme", "acme") },
		func() error { return start(ctx, e, export, "export-2026-11", "2026-11", durable.OnQueue("reports")) },
		func() error { return start(ctx, e, fanout, "fanout-42", 42) },
	}
	for _, s := range starts {
		if err := s(); err != nil {
			e.Close()
			return nil, err
		}
	}
	waits := map[string]func(durable.RunInfo) bool{
		"checkout-77":        is(durable.StatusFailed),
		"approval-q3-budget": pending("receive"),
		"reminder-carol":     pending("sleep"),
		"sync-crm-acme":      func(i durable.RunInfo) bool { return len(i.Pending) > 0 && i.Pending[0].LastError != "" },
		"fanout-42/2":        pending("receive"),
		"fanout-42":          pending("child"),
		"export-2026-11":     pending("step"),
	}
	for id, ok := range waits {
		if err := waitFor(ctx, e, id, ok); err != nil {
			e.Close()
			return nil, err
		}
	}
	// The export holds the queue's only slot: these wait, the higher
	// priority first.
	for _, r := range []struct {
		id, month string
		prio      int
	}{{"report-2026-q3", "2026-Q3", 0}, {"report-2026-q4", "2026-Q4", 5}} {
		if err := start(ctx, e, export, r.id, r.month, durable.OnQueue("reports"), durable.WithPriority(r.prio)); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.Cancel(ctx, "reminder-carol"); err != nil {
		e.Close()
		return nil, err
	}
	if err := waitFor(ctx, e, "reminder-carol", is(durable.StatusCanceled)); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func is(st durable.Status) func(durable.RunInfo) bool {
	return func(i durable.RunInfo) bool { return i.Status == st }
}

func pending(kind string) func(durable.RunInfo) bool {
	return func(i durable.RunInfo) bool {
		for _, op := range i.Pending {
			if op.Kind == kind {
				return true
			}
		}
		return false
	}
}

func start[I, O any](ctx context.Context, e *durable.Engine, w *durable.Workflow[I, O], id string, in I, opts ...durable.StartOption) error {
	_, err := durable.Start(ctx, e, w, id, in, opts...)
	return err
}

func run[I, O any](ctx context.Context, e *durable.Engine, w *durable.Workflow[I, O], id string, in I) error {
	_, err := durable.Run(ctx, e, w, id, in)
	return err
}

// waitFor waits until ok says run id got there, for at most a minute.
func waitFor(ctx context.Context, e *durable.Engine, id string, ok func(durable.RunInfo) bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		info, err := e.Get(ctx, id)
		if err == nil && ok(info) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dashdemo: run %q did not get where it should (%+v): %w", id, info, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
