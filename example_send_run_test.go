package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// SendTo sends a message from one workflow to another run: the send and
// the sender's record of it are one commit, so the collector receives each
// order once, and a replay of the sender does not send again. A send to a
// run that does not exist is a recorded error.
func ExampleSendTo() {
	collector := durable.Define("collector", func(ctx durable.Context, n int) ([]string, error) {
		var got []string
		for len(got) < n {
			order, err := durable.Receive[string](ctx, "orders")
			if err != nil {
				return nil, err
			}
			got = append(got, order)
		}
		return got, nil
	})
	shop := durable.Define("shop", func(ctx durable.Context, order string) (string, error) {
		if err := durable.SendTo(ctx, "collector-1", "orders", order); err != nil {
			return "", err
		}
		if err := durable.SendTo(ctx, "nobody", "orders", order); errors.Is(err, durable.ErrNotFound) {
			return "sent " + order + "; no run nobody", nil
		}
		return "", errors.New("the send to nobody did not fail")
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{collector, shop}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	ctx := context.Background()
	h, err := durable.Start(ctx, e, collector, "collector-1", 2)
	if err != nil {
		log.Fatal(err)
	}
	for i, order := range []string{"tea", "cake"} {
		out, err := durable.Run(ctx, e, shop, fmt.Sprintf("shop-%d", i), order)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(out)
	}
	orders, err := h.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(orders)
	// Output:
	// sent tea; no run nobody
	// sent cake; no run nobody
	// [tea cake]
}
