package durable_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// A workflow publishes a value with SetEvent; code outside waits for it
// with GetEvent: here, a request/response exchange with a running run.
func ExampleGetEvent() {
	quote := durable.Define("quote", func(ctx durable.Context, _ struct{}) (struct{}, error) {
		item, err := durable.Receive[string](ctx, "ask")
		if err != nil {
			return struct{}{}, err
		}
		price, err := durable.Step(ctx, "price", func(context.Context) (int, error) { return len(item) * 100, nil })
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, durable.SetEvent(ctx, "price:"+item, price)
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{quote}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	ctx := context.Background()
	if _, err := durable.SendWithStart(ctx, e, quote, "quote-1", struct{}{}, "ask", "chair"); err != nil {
		log.Fatal(err)
	}
	price, err := durable.GetEvent[int](ctx, e, "quote-1", "price:chair", 10*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("chair costs", price)
	// Output: chair costs 500
}
