package durable_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// An error message carries one package prefix ("durable: " or
// "journal: "), at its start, however many layers wrapped it.
func TestOnePrefixPerErrorChain(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()
	errs := map[string]error{}

	notBolt := filepath.Join(dir, "text.db")
	if err := os.WriteFile(notBolt, []byte(strings.Repeat("not a journal\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs["Open of a text file"] = durable.Open(notBolt, quiet(nil))
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs["Open of an empty file"] = durable.Open(empty, quiet(nil))

	// A parked run: the code calls another step than the journal holds.
	store := journal.NewMemory()
	v1 := durable.Define("prefix", func(ctx durable.Context, _ int) (int, error) {
		if _, err := durable.Step(ctx, "a", func(context.Context) (int, error) { return 1, nil }); err != nil {
			return 0, err
		}
		return durable.Receive[int](ctx, "go")
	})
	v2 := durable.Define("prefix", func(ctx durable.Context, _ int) (int, error) {
		return durable.Step(ctx, "b", func(context.Context) (int, error) { return 1, nil })
	})
	e, err := durable.New(store, quiet(config(v1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Start(ctx, e, v1, "p", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first step", func() bool {
		ev, err := durable.History(ctx, store, "p")
		return err == nil && len(ev) > 0
	})
	mustClose(t, e)
	e, err = durable.New(store, quiet(config(v2)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// A waiting run loads (and meets the new code) when woken.
	if err := durable.Send(ctx, e, "p", "go", 1); err != nil {
		t.Fatal(err)
	}
	_, errs["Result of a parked run"] = durable.Run(ctx, e, v2, "p", 0)
	errs["Get of a parked run (RunInfo.Err)"] = waitStatus(t, e, "p", durable.StatusParked).Err

	_, errs["Get of no run"] = e.Get(ctx, "nope")
	errs["Send to no run"] = durable.Send(ctx, e, "nope", "c", 1)
	errs["Cancel of no run"] = e.Cancel(ctx, "nope")
	_, errs["History of no run"] = durable.History(ctx, store, "nope")

	for what, err := range errs {
		if err == nil {
			t.Errorf("%s: no error", what)
			continue
		}
		msg := err.Error()
		if n := strings.Count(msg, "durable: ") + strings.Count(msg, "journal: "); n != 1 || !(strings.HasPrefix(msg, "durable: ") || strings.HasPrefix(msg, "journal: ")) {
			t.Errorf("%s: %q has %d package prefixes; want one, at the start", what, msg, n)
		}
	}
}
