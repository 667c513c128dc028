package durable_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// Names the journal cannot hold (a step name over journal.MaxNameLen, a
// channel with a NUL byte or over journal.MaxChannelLen, a run or child id
// over journal.MaxIDLen) are refused before anything runs or is written,
// with an error matching ErrInvalid whose message does not repeat the
// whole name.

var (
	longName = strings.Repeat("n", 1<<20) // 1 MiB
	nulName  = "a\x00b"
)

// checkInvalid checks err matches ErrInvalid and has a short message.
func checkInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, durable.ErrInvalid) {
		t.Errorf("%s: err = %.200v; want an error matching ErrInvalid", what, err)
		return
	}
	if n := len(err.Error()); n > 1000 {
		t.Errorf("%s: error message of %d bytes; want it cut", what, n)
	}
}

func TestInvalidNamesInWorkflow(t *testing.T) {
	t.Parallel()
	child := durable.Define("validate-child", func(ctx durable.Context, _ int) (int, error) { return 1, nil })
	cases := map[string]func(ctx durable.Context, step func(context.Context) (int, error)) error{
		"Step name over MaxNameLen": func(ctx durable.Context, step func(context.Context) (int, error)) error {
			_, err := durable.Step(ctx, strings.Repeat("s", journal.MaxNameLen+1), step)
			return err
		},
		"Go name over MaxNameLen": func(ctx durable.Context, step func(context.Context) (int, error)) error {
			_, err := durable.Go(ctx, longName, step).Get(ctx)
			return err
		},
		"Receive on a NUL channel": func(ctx durable.Context, step func(context.Context) (int, error)) error {
			_, err := durable.Receive[int](ctx, nulName)
			return err
		},
		"Receive on a 1 MiB channel": func(ctx durable.Context, step func(context.Context) (int, error)) error {
			_, err := durable.Receive[int](ctx, longName)
			return err
		},
		"ReceiveTimeout on a 1 MiB channel": func(ctx durable.Context, step func(context.Context) (int, error)) error {
			_, err := durable.ReceiveTimeout[int](ctx, longName, 1)
			return err
		},
		"AwaitAny of a NUL channel": func(ctx durable.Context, step func(context.Context) (int, error)) error {
			_, err := durable.AwaitAny(ctx, durable.OnReceive[int](nulName))
			return err
		},
		"child id with a NUL byte": func(ctx durable.Context, step func(context.Context) (int, error)) error {
			_, err := durable.RunChild(ctx, child, nulName, 0)
			return err
		},
		"child id of 1 MiB": func(ctx durable.Context, step func(context.Context) (int, error)) error {
			_, err := durable.RunChild(ctx, child, longName, 0)
			return err
		},
		"limit key not in Config.Limits": func(ctx durable.Context, step func(context.Context) (int, error)) error {
			_, err := durable.Step(ctx, "limited", step, durable.WithLimit("no-such-key"))
			return err
		},
	}
	for name, op := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			got := make(chan error, 1)
			var ran atomic.Int32
			step := func(context.Context) (int, error) { ran.Add(1); return 1, nil }
			wf := durable.Define("validate", func(ctx durable.Context, _ int) (int, error) {
				err := op(ctx, step)
				select {
				case got <- err:
				default:
				}
				// The run goes on: the bad call took nothing from it.
				return durable.Step(ctx, "after", func(context.Context) (int, error) { return 7, nil })
			})
			e, err := durable.New(journal.NewMemory(), quiet(config(wf, child)))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			out, err := durable.Run(ctx, e, wf, "v-1", 0)
			if err != nil || out != 7 {
				t.Fatalf("Run = %v, %.200v; want 7, nil", out, err)
			}
			checkInvalid(t, name, <-got)
			if n := ran.Load(); n != 0 {
				t.Errorf("the step ran %d times", n)
			}
		})
	}
}

func TestInvalidNamesFromOutside(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	wf := durable.Define("validate-outside", func(ctx durable.Context, _ int) (int, error) {
		return durable.Receive[int](ctx, "c")
	})
	e, err := durable.New(journal.NewMemory(), quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := durable.Start(ctx, e, wf, "o-1", 0); err != nil {
		t.Fatal(err)
	}
	checkInvalid(t, "Send on a 1 MiB channel", durable.Send(ctx, e, "o-1", longName, 1))
	checkInvalid(t, "Send on a NUL channel", durable.Send(ctx, e, "o-1", nulName, 1))
	checkInvalid(t, "Send to a 1 MiB id", durable.Send(ctx, e, longName, "c", 1))
	_, err = durable.Start(ctx, e, wf, longName, 0)
	checkInvalid(t, "Start of a 1 MiB id", err)
	_, err = e.Get(ctx, longName)
	checkInvalid(t, "Get of a 1 MiB id", err)
	checkInvalid(t, "Cancel of a 1 MiB id", e.Cancel(ctx, longName))
	_, err = e.Fork(ctx, "o-1", 0, longName)
	checkInvalid(t, "Fork to a 1 MiB id", err)
	_, err = e.Fork(ctx, "o-1", 0, nulName)
	checkInvalid(t, "Fork to a NUL id", err)
	if _, err := e.Get(ctx, nulName); !errors.Is(err, durable.ErrInvalid) && !errors.Is(err, durable.ErrNotFound) {
		t.Errorf("Get of the refused fork's id: %v; want no such run", err)
	}
}
