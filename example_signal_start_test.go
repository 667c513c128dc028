package durable_test

import (
	"context"
	"fmt"
	"log"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// SendWithStart creates the run if it does not exist and delivers the
// message, in one commit: the first call starts the batch, the others add
// to it.
func ExampleSendWithStart() {
	batch := durable.Define("batch", func(ctx durable.Context, size int) ([]string, error) {
		var items []string
		for len(items) < size {
			item, err := durable.Receive[string](ctx, "item")
			if err != nil {
				return nil, err
			}
			items = append(items, item)
		}
		return items, nil
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{batch}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	ctx := context.Background()
	var h *durable.Handle[[]string]
	for _, item := range []string{"apples", "pears", "plums"} {
		if h, err = durable.SendWithStart(ctx, e, batch, "batch-1", 3, "item", item); err != nil {
			log.Fatal(err)
		}
	}
	items, err := h.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(items)
	// Output: [apples pears plums]
}
