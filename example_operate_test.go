package durable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// Operating a live run: Get says what it waits for, a JSON message is
// decoded into the type it receives, and Attach waits for its result
// without its input.
func ExampleAttach() {
	type decision struct {
		Approved bool   `json:"approved"`
		By       string `json:"by"`
	}
	approval := durable.Define("approval", func(ctx durable.Context, doc string) (string, error) {
		d, err := durable.Receive[decision](ctx, "decision")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s approved=%v by %s", doc, d.Approved, d.By), nil
	})
	ctx := context.Background()
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{approval}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	if _, err := durable.Start(ctx, e, approval, "approval-7", "budget"); err != nil {
		log.Fatal(err)
	}
	for { // the run starts in the background
		info, err := e.Get(ctx, "approval-7")
		if err != nil {
			log.Fatal(err)
		}
		if len(info.Pending) > 0 {
			op := info.Pending[0]
			fmt.Printf("waiting: %s on %q\n", op.Kind, op.Name)
			break
		}
		time.Sleep(time.Millisecond)
	}
	// What an operator sends, as the web API does: JSON.
	if err := durable.Send(ctx, e, "approval-7", "decision", json.RawMessage(`{"approved": true, "by": "ana"}`)); err != nil {
		log.Fatal(err)
	}
	h, err := durable.Attach(ctx, e, approval, "approval-7")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Result(ctx))
	// Output:
	// waiting: receive on "decision"
	// budget approved=true by ana <nil>
}
