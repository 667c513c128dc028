package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// A queue with one slot: runs wait in the journal (no goroutine) and are
// admitted by priority, then in the order they were started; a dedup key
// refuses a second start while the first run with that key is active.
func ExampleOnQueue() {
	var mails atomic.Int32
	send := durable.Define("send-mail", func(ctx durable.Context, to string) (string, error) {
		return durable.Step(ctx, "send", func(context.Context) (string, error) {
			return fmt.Sprintf("mail %d to %s", mails.Add(1), to), nil
		})
	})
	batch := durable.Define("batch", func(ctx durable.Context, _ struct{}) (struct{}, error) {
		return durable.Receive[struct{}](ctx, "done")
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{
		Workflows: []durable.Definition{send, batch},
		Queues:    map[string]durable.Queue{"mail": {Concurrency: 1}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()

	// A batch takes the queue's only slot.
	if _, err := durable.Start(ctx, e, batch, "batch", struct{}{}, durable.OnQueue("mail")); err != nil {
		log.Fatal(err)
	}
	for info, _ := e.Get(ctx, "batch"); info.Queued; info, _ = e.Get(ctx, "batch") {
		time.Sleep(time.Millisecond) // until it is admitted
	}
	ann, err := durable.Start(ctx, e, send, "welcome-ann", "ann", durable.OnQueue("mail"), durable.WithDedupKey("ann"))
	if err != nil {
		log.Fatal(err)
	}
	bob, err := durable.Start(ctx, e, send, "alert-bob", "bob", durable.OnQueue("mail"), durable.WithPriority(10))
	if err != nil {
		log.Fatal(err)
	}
	_, err = durable.Start(ctx, e, send, "welcome-ann-again", "ann", durable.OnQueue("mail"), durable.WithDedupKey("ann"))
	var dup *durable.DuplicateError
	if errors.As(err, &dup) {
		fmt.Println("refused: key held by", dup.RunID)
	}
	for _, id := range []string{"welcome-ann", "alert-bob"} {
		info, _ := e.Get(ctx, id)
		fmt.Println(id, "waits at position", info.QueuePosition)
	}

	if err := durable.Send(ctx, e, "batch", "done", struct{}{}); err != nil {
		log.Fatal(err)
	}
	for _, h := range []*durable.Handle[string]{ann, bob} {
		out, err := h.Result(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(out)
	}
	// Output:
	// refused: key held by welcome-ann
	// welcome-ann waits at position 2
	// alert-bob waits at position 1
	// mail 2 to ann
	// mail 1 to bob
}
