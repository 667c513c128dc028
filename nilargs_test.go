package durable_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

// A nil *Engine or store is a caller's mistake: it gets an error matching
// ErrInvalid, not a nil pointer panic.
func TestNilEngineAndStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var e *durable.Engine
	wf := durable.Define("nil-engine", func(ctx durable.Context, _ int) (int, error) { return 0, nil })
	calls := map[string]func() error{
		"Close":   e.Close,
		"Send":    func() error { return durable.Send(ctx, nil, "r", "c", 1) },
		"History": func() error { _, err := durable.History(ctx, nil, "r"); return err },
		"Get":     func() error { _, err := e.Get(ctx, "r"); return err },
		"List":    func() error { _, err := e.List(ctx, durable.ListOptions{}); return err },
		"Cancel":  func() error { return e.Cancel(ctx, "r") },
		"Purge":   func() error { _, err := e.Purge(ctx, time.Now()); return err },
		"Start":   func() error { _, err := durable.Start(ctx, e, wf, "r", 0); return err },
		"Run":     func() error { _, err := durable.Run(ctx, e, wf, "r", 0); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, durable.ErrInvalid) {
			t.Errorf("%s on nil = %v; want an error matching ErrInvalid", name, err)
		}
	}
}
