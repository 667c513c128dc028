package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// A workflow is a Go function whose steps are journaled in a bbolt file:
// after a crash, Open resumes it where it stopped.
func Example() {
	dir, err := os.MkdirTemp("", "durable-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	greet := durable.Define("greet", func(ctx durable.Context, name string) (string, error) {
		msg, err := durable.Step(ctx, "compose", func(ctx context.Context) (string, error) {
			return "hello " + name, nil
		})
		if err != nil {
			return "", err
		}
		return durable.Step(ctx, "shout", func(ctx context.Context) (string, error) {
			return strings.ToUpper(msg), nil
		})
	})

	e, err := durable.Open(filepath.Join(dir, "app.journal"), &durable.Config{Workflows: []durable.Definition{greet}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	out, err := durable.Run(context.Background(), e, greet, "greet-bob", "bob")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	// Output: HELLO BOB
}

// A step is retried by its policy; every attempt sees the same
// idempotency key, to pass to external systems.
func ExampleStep() {
	e, err := durable.New(journal.NewMemory(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	charge := durable.Define("charge", func(ctx durable.Context, cents int) (string, error) {
		return durable.Step(ctx, "card", func(ctx context.Context) (string, error) {
			info, _ := durable.StepInfoFrom(ctx)
			fmt.Printf("attempt %d, key %s\n", info.Attempt, info.IdempotencyKey)
			if info.Attempt < 3 {
				return "", errors.New("gateway timeout")
			}
			return fmt.Sprintf("charged %d cents", cents), nil
		}, durable.WithRetry(retry.Policy{MaxAttempts: 5, Backoff: backoff.Constant(0)}))
	})

	out, err := durable.Run(context.Background(), e, charge, "order-7", 1250)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	// Output:
	// attempt 1, key order-7/0
	// attempt 2, key order-7/0
	// attempt 3, key order-7/0
	// charged 1250 cents
}

// Go starts steps that run concurrently; their results come back in call
// order, whatever order they finish in.
func ExampleGo() {
	e, err := durable.New(journal.NewMemory(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	lengths := durable.Define("lengths", func(ctx durable.Context, words []string) ([]string, error) {
		futures := make([]*durable.Future[int], len(words))
		for i, w := range words {
			futures[i] = durable.Go(ctx, "measure-"+w, func(ctx context.Context) (int, error) {
				return len(w), nil
			})
		}
		var out []string
		for i, f := range futures {
			n, err := f.Get(ctx)
			if err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprintf("%s=%d", words[i], n))
		}
		return out, nil
	})

	out, err := durable.Run(context.Background(), e, lengths, "", []string{"durable", "go", "workflows"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Join(out, " "))
	// Output: durable=7 go=2 workflows=9
}

// A child workflow is a run of its own, started and awaited durably by its
// parent.
func ExampleRunChild() {
	e, err := durable.New(journal.NewMemory(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	ship := durable.Define("ship", func(ctx durable.Context, item string) (string, error) {
		return durable.Step(ctx, "book", func(ctx context.Context) (string, error) {
			return "parcel for " + item, nil
		})
	})
	order := durable.Define("order", func(ctx durable.Context, item string) (string, error) {
		label, err := durable.RunChild(ctx, ship, "", item)
		if err != nil {
			return "", err
		}
		return "order done: " + label, nil
	})

	ctx := context.Background()
	out, err := durable.Run(ctx, e, order, "o-1", "book")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	children, err := e.List(ctx, durable.ListOptions{Parent: "o-1"})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range children.Runs {
		fmt.Println(c.ID, c.Workflow, c.Status)
	}
	// Output:
	// order done: parcel for book
	// o-1/0 ship completed
}

// A message sent to a run is stored until the run receives it.
func ExampleSend() {
	e, err := durable.New(journal.NewMemory(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	approval := durable.Define("approval", func(ctx durable.Context, doc string) (string, error) {
		verdict, err := durable.Receive[string](ctx, "verdict")
		if err != nil {
			return "", err
		}
		return doc + ": " + verdict, nil
	})

	ctx := context.Background()
	h, err := durable.Start(ctx, e, approval, "doc-42", "budget.pdf")
	if err != nil {
		log.Fatal(err)
	}
	if err := durable.Send(ctx, e, h.ID(), "verdict", "approved"); err != nil {
		log.Fatal(err)
	}
	out, err := h.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	// Output: budget.pdf: approved
}

// Cancel stops a run wherever it waits; the workflow sees an error that
// matches ErrCanceled.
func ExampleEngine_Cancel() {
	e, err := durable.New(journal.NewMemory(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	wait := durable.Define("wait", func(ctx durable.Context, _ int) (string, error) {
		return durable.Receive[string](ctx, "never-sent")
	})

	ctx := context.Background()
	h, err := durable.Start(ctx, e, wait, "w-1", 0)
	if err != nil {
		log.Fatal(err)
	}
	if err := e.Cancel(ctx, h.ID()); err != nil {
		log.Fatal(err)
	}
	_, err = h.Result(ctx)
	fmt.Println(errors.Is(err, durable.ErrCanceled), errors.Is(err, context.Canceled))
	info, err := e.Get(ctx, h.ID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Status)
	// Output:
	// true true
	// canceled
}

// List pages through runs, filtered by status and workflow.
func ExampleEngine_List() {
	e, err := durable.New(journal.NewMemory(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	check := durable.Define("check", func(ctx durable.Context, n int) (int, error) {
		if n < 0 {
			return 0, errors.New("negative")
		}
		return n, nil
	})
	ctx := context.Background()
	for i, n := range []int{1, -2, 3, 4} {
		durable.Run(ctx, e, check, fmt.Sprintf("check-%d", i), n) // errors are in the runs
	}

	opts := durable.ListOptions{Workflow: "check", Limit: 2}
	for page := 1; ; page++ {
		p, err := e.List(ctx, opts)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range p.Runs {
			fmt.Println(page, r.ID, r.Status)
		}
		if p.NextAfter == "" {
			break
		}
		opts.After = p.NextAfter
	}
	failed, err := e.List(ctx, durable.ListOptions{Status: durable.StatusFailed})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("failed:", failed.Runs[0].ID, failed.Runs[0].Err)
	// Output:
	// 1 check-0 completed
	// 1 check-1 failed
	// 2 check-2 completed
	// 2 check-3 completed
	// failed: check-1 negative
}
