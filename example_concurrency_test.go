package durable_test

import (
	"context"
	"fmt"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// AwaitAny waits for whichever comes first: here a decision sent to the
// run, or three days. Which one won is journaled, so a restart takes the
// same branch even if the other one is ready by then.
func ExampleAwaitAny() {
	approval := durable.Define("approval", func(ctx durable.Context, what string) (string, error) {
		decision := durable.OnReceive[string]("decision")
		expiry := durable.NewTimer(ctx, 72*time.Hour)
		won, err := durable.AwaitAny(ctx, decision, expiry)
		if err != nil {
			return "", err
		}
		if won == 1 {
			return what + ": expired without a decision", nil
		}
		who, _ := decision.Value()
		return what + ": approved by " + who, nil
	})

	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{approval}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	ctx := context.Background()
	h, err := durable.Start(ctx, e, approval, "expense-7", "expense 7")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := durable.Send(ctx, e, "expense-7", "decision", "alice"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h.Result(ctx))
	// Output: expense 7: approved by alice <nil>
}

// AwaitAll fans in: the prices are fetched at once with Go, and AwaitAll
// waits for all of them. It returns the first error in argument order.
func ExampleAwaitAll() {
	prices := map[string]int{"apples": 3, "bread": 2, "cheese": 7}
	basket := durable.Define("basket", func(ctx durable.Context, items []string) (int, error) {
		futures := make([]*durable.Future[int], len(items))
		all := make([]durable.Awaitable, len(items))
		for i, item := range items {
			futures[i] = durable.Go(ctx, "price-"+item, func(ctx context.Context) (int, error) {
				p, ok := prices[item] // a call to a pricing service
				if !ok {
					return 0, retry.Permanent(fmt.Errorf("no price for %s", item))
				}
				return p, nil
			})
			all[i] = futures[i]
		}
		if err := durable.AwaitAll(ctx, all...); err != nil {
			return 0, err
		}
		total := 0
		for _, f := range futures {
			p, _ := f.Get(ctx) // ready: AwaitAll waited for it
			total += p
		}
		return total, nil
	})

	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{basket}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	ctx := context.Background()
	fmt.Println(durable.Run(ctx, e, basket, "basket-1", []string{"apples", "bread", "cheese"}))
	fmt.Println(durable.Run(ctx, e, basket, "basket-2", []string{"apples", "caviar", "truffles"}))
	// Output:
	// 12 <nil>
	// 0 durable: basket(basket-2) → step "price-caviar" failed after 1 attempt: no price for caviar
}

// StartChild starts child workflows that run at the same time; each is a
// run of its own, listed with its parent.
func ExampleStartChild() {
	ship := durable.Define("ship", func(ctx durable.Context, parcel string) (string, error) {
		return durable.Step(ctx, "book-courier", func(ctx context.Context) (string, error) {
			return "tracking-" + parcel, nil
		})
	})
	order := durable.Define("order", func(ctx durable.Context, parcels []string) ([]string, error) {
		var children []*durable.Future[string]
		for _, p := range parcels {
			// An empty id names the child "<parent id>/<position>".
			children = append(children, durable.StartChild(ctx, ship, "", p))
		}
		var tracking []string
		for _, c := range children {
			t, err := c.Get(ctx)
			if err != nil {
				return nil, err
			}
			tracking = append(tracking, t)
		}
		return tracking, nil
	})

	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{order, ship}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	ctx := context.Background()
	fmt.Println(durable.Run(ctx, e, order, "order-1", []string{"a", "b"}))
	page, err := e.List(ctx, durable.ListOptions{Parent: "order-1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range page.Runs {
		fmt.Println(r.ID, r.Workflow, r.Status, "parent:", r.Parent)
	}
	// Output:
	// [tracking-a tracking-b] <nil>
	// order-1/0 ship completed parent: order-1
	// order-1/1 ship completed parent: order-1
}

// A saga undoes what was done, last first, when a later step fails for
// good. Each compensation is a durable step: after a crash it is neither
// lost nor repeated once recorded.
func ExampleNewSaga() {
	trip := durable.Define("trip", func(ctx durable.Context, city string) (string, error) {
		saga := durable.NewSaga(ctx)
		for _, what := range []string{"flight", "hotel", "car"} {
			_, err := durable.Step(ctx, "book-"+what, func(context.Context) (string, error) {
				if what == "car" {
					return "", retry.Permanent(fmt.Errorf("no car available in %s", city))
				}
				fmt.Println("booked", what)
				return what, nil
			})
			if err != nil {
				return "", saga.Compensate(err)
			}
			saga.Add("cancel-"+what, func(context.Context) error {
				fmt.Println("canceled", what)
				return nil
			})
		}
		return "booked", nil
	})

	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{trip}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	_, err = durable.Run(context.Background(), e, trip, "trip-1", "Reykjavik")
	fmt.Println(err)
	// Output:
	// booked flight
	// booked hotel
	// canceled hotel
	// canceled flight
	// durable: trip(trip-1) → step "book-car" failed after 1 attempt: no car available in Reykjavik
}
