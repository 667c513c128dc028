// Command order shows concurrency inside a durable workflow:
//
//	go run ./example/order
//
// An order workflow asks three services at once (inventory, pricing and a
// fraud check: durable.Go, then durable.AwaitAll), reserves the stock,
// charges the card, and ships the order with a child workflow of its own
// (durable.RunChild). A durable.Saga remembers how to undo each change:
// when a later step fails for good, the compensations run, last first.
//
// Two orders go through. The first is shipped. The second cannot be: no
// courier delivers to its address, so its payment is refunded and its
// stock released. Every step, and the outcome of each order, is journaled
// in a bbolt file; run the command again with the same -journal and both
// orders come back from the journal at once, with nothing executed again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/retry"
)

// Order is the workflow's input.
type Order struct {
	ID      string
	Item    string
	Qty     int
	Card    string
	Country string
}

// Shipment is the shipping workflow's input.
type Shipment struct {
	OrderID string
	Item    string
	Qty     int
	Country string
}

// The simulated services. Each call takes a little while, as a network call
// would; the workflow code never calls them directly, only inside steps.
var (
	prices   = map[string]int{"espresso-machine": 24900, "grinder": 8900}
	couriers = map[string]bool{"NL": true, "FR": true, "DE": true}

	stockMu sync.Mutex
	stock   = map[string]int{"espresso-machine": 5, "grinder": 12}
)

var start = time.Now()

func say(format string, args ...any) {
	fmt.Printf("[%4.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// call simulates the latency of a remote service.
func call(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func eur(cents int) string { return fmt.Sprintf("€%d.%02d", cents/100, cents%100) }

// shipping is the child workflow: print a label, then book a courier.
var shipping = durable.Define("shipping", func(ctx durable.Context, s Shipment) (string, error) {
	label, err := durable.Step(ctx, "print-label", func(ctx context.Context) (string, error) {
		if err := call(ctx, 150*time.Millisecond); err != nil {
			return "", err
		}
		label := fmt.Sprintf("LBL-%s-%s", s.OrderID, s.Country)
		say("%s   shipping: label %s printed", s.OrderID, label)
		return label, nil
	})
	if err != nil {
		return "", err
	}
	return durable.Step(ctx, "book-courier", func(ctx context.Context) (string, error) {
		if err := call(ctx, 250*time.Millisecond); err != nil {
			return "", err
		}
		if !couriers[s.Country] {
			say("%s   shipping: no courier delivers to %s", s.OrderID, s.Country)
			// Permanent: retrying will not make a courier appear.
			return "", retry.Permanent(fmt.Errorf("no courier delivers to %s", s.Country))
		}
		tracking := "TRK-" + strings.TrimPrefix(label, "LBL-")
		say("%s   shipping: courier booked, tracking %s", s.OrderID, tracking)
		return tracking, nil
	})
})

var order = durable.Define("order", func(ctx durable.Context, o Order) (string, error) {
	// Fan out: three independent checks run at the same time. Each is a
	// durable step with its own journal position (taken here, in call
	// order), so the order they finish in never changes a replay.
	inventory := durable.Go(ctx, "inventory", func(ctx context.Context) (int, error) {
		say("%s   inventory: checking %s...", o.ID, o.Item)
		if err := call(ctx, 400*time.Millisecond); err != nil {
			return 0, err
		}
		stockMu.Lock()
		n := stock[o.Item]
		stockMu.Unlock()
		say("%s   inventory: %d in stock", o.ID, n)
		return n, nil
	})
	pricing := durable.Go(ctx, "pricing", func(ctx context.Context) (int, error) {
		say("%s   pricing: quoting %d × %s...", o.ID, o.Qty, o.Item)
		if err := call(ctx, 300*time.Millisecond); err != nil {
			return 0, err
		}
		total := prices[o.Item] * o.Qty
		say("%s   pricing: %s", o.ID, eur(total))
		return total, nil
	})
	fraud := durable.Go(ctx, "fraud-check", func(ctx context.Context) (bool, error) {
		say("%s   fraud check: scoring card %s...", o.ID, o.Card)
		if err := call(ctx, 350*time.Millisecond); err != nil {
			return false, err
		}
		say("%s   fraud check: ok", o.ID)
		return true, nil
	})
	// Fan in: wait for all three; the first error in argument order wins.
	if err := durable.AwaitAll(ctx, inventory, pricing, fraud); err != nil {
		return "", err
	}
	available, _ := inventory.Get(ctx)
	total, _ := pricing.Get(ctx)
	if ok, _ := fraud.Get(ctx); !ok {
		return "", errors.New("order refused by the fraud check")
	}
	if available < o.Qty {
		return "", fmt.Errorf("only %d %s in stock", available, o.Item)
	}

	// Changes to other systems, each followed by its undo. Compensate runs
	// the undos recorded so far, last first, each as a durable step.
	saga := durable.NewSaga(ctx)
	if _, err := durable.Step(ctx, "reserve-stock", func(ctx context.Context) (int, error) {
		stockMu.Lock()
		defer stockMu.Unlock()
		stock[o.Item] -= o.Qty
		say("%s   stock: reserved %d × %s (%d left)", o.ID, o.Qty, o.Item, stock[o.Item])
		return o.Qty, nil
	}); err != nil {
		return "", saga.Compensate(err)
	}
	saga.Add("release-stock", func(ctx context.Context) error {
		stockMu.Lock()
		defer stockMu.Unlock()
		stock[o.Item] += o.Qty
		say("%s   compensate: released %d × %s (%d left)", o.ID, o.Qty, o.Item, stock[o.Item])
		return nil
	})

	payment, err := durable.Step(ctx, "charge-card", func(ctx context.Context) (string, error) {
		info, _ := durable.StepInfoFrom(ctx) // the same key on every attempt and restart
		if err := call(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
		say("%s   payment: charged %s to card %s (idempotency key %s)", o.ID, eur(total), o.Card, info.IdempotencyKey)
		return "PAY-" + o.ID, nil
	})
	if err != nil {
		return "", saga.Compensate(err)
	}
	saga.Add("refund", func(ctx context.Context) error {
		if err := call(ctx, 150*time.Millisecond); err != nil {
			return err
		}
		say("%s   compensate: refunded %s (payment %s)", o.ID, eur(total), payment)
		return nil
	})

	// Shipping is a workflow of its own: a child run with its own journal,
	// created exactly once; its result is journaled here.
	tracking, err := durable.RunChild(ctx, shipping, "", Shipment{OrderID: o.ID, Item: o.Item, Qty: o.Qty, Country: o.Country})
	if err != nil {
		return "", saga.Compensate(err)
	}
	return fmt.Sprintf("%d × %s, %s paid (%s), shipped with tracking %s", o.Qty, o.Item, eur(total), payment, tracking), nil
})

func main() {
	log.SetFlags(0)
	path := flag.String("journal", "", "journal file (default: a new temporary directory)")
	flag.Parse()
	if *path == "" {
		dir, err := os.MkdirTemp("", "durable-order-demo-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		*path = filepath.Join(dir, "orders.journal")
	}
	say("journal: %s", *path)

	e, err := durable.Open(*path, &durable.Config{Workflows: []durable.Definition{order, shipping}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()

	orders := []Order{
		{ID: "order-1", Item: "espresso-machine", Qty: 1, Card: "4242", Country: "NL"},
		{ID: "order-2", Item: "grinder", Qty: 2, Card: "5555", Country: "AQ"}, // Antarctica
	}
	for _, o := range orders {
		fmt.Println()
		say("%s: %d × %s to %s", o.ID, o.Qty, o.Item, o.Country)
		out, err := durable.Run(ctx, e, order, o.ID, o)
		if err != nil {
			say("%s FAILED: %v", o.ID, err)
			var child *durable.ChildError
			if errors.As(err, &child) {
				say("%s   (the child run %s failed; everything before it was undone)", o.ID, child.RunID)
			}
			continue
		}
		say("%s DONE: %s", o.ID, out)
	}

	fmt.Println()
	say("runs in the journal:")
	page, err := e.List(ctx, durable.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range page.Runs {
		parent := ""
		if r.Parent != "" {
			parent = "  (child of " + r.Parent + ")"
		}
		say("  %-10s %-9s %s%s", r.ID, r.Workflow, r.Status, parent)
	}
	stockMu.Lock()
	say("stock service (simulated in this process): espresso-machine %d, grinder %d", stock["espresso-machine"], stock["grinder"])
	stockMu.Unlock()
}
