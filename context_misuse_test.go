package durable_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// A Context belongs to its workflow goroutine while the workflow runs. Kept
// after that, or shared by goroutines that call durable operations at
// once, it must give a typed error, never a silent runtime.Goexit of the
// caller or a data race on the run's position counter.

func TestContextUsedAfterWorkflowReturned(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	kept := make(chan durable.Context, 1)
	wf := durable.Define("keeps-context", func(ctx durable.Context, _ int) (int, error) {
		kept <- ctx
		return 1, nil
	})
	e, err := durable.New(journal.NewMemory(), quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := durable.Run(ctx, e, wf, "k-1", 0); err != nil {
		t.Fatal(err)
	}
	wctx := <-kept
	checkStale(t, wctx)
}

func TestContextOfClosedEngine(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	kept := make(chan durable.Context, 1)
	wf := durable.Define("keeps-context-closed", func(ctx durable.Context, _ int) (int, error) {
		kept <- ctx
		_, err := durable.Receive[int](ctx, "never")
		return 0, err
	})
	e, err := durable.New(journal.NewMemory(), quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Start(ctx, e, wf, "kc-1", 0); err != nil {
		t.Fatal(err)
	}
	wctx := recv(t, kept, "the workflow's Context")
	mustClose(t, e)
	checkStale(t, wctx)
}

// checkStale checks that every durable operation on a stale Context
// returns an error matching ErrStaleContext (and that the calling
// goroutine is still alive to see it).
func checkStale(t *testing.T, ctx durable.Context) {
	t.Helper()
	_, err := durable.Step(ctx, "late", func(context.Context) (int, error) {
		t.Error("a step of a stale Context ran")
		return 0, nil
	})
	if !errors.Is(err, durable.ErrStaleContext) {
		t.Errorf("Step = %v; want ErrStaleContext", err)
	}
	if err := durable.Sleep(ctx, 1); !errors.Is(err, durable.ErrStaleContext) {
		t.Errorf("Sleep = %v; want ErrStaleContext", err)
	}
	if _, err := durable.Receive[int](ctx, "c"); !errors.Is(err, durable.ErrStaleContext) {
		t.Errorf("Receive = %v; want ErrStaleContext", err)
	}
	f := durable.Go(ctx, "late-go", func(context.Context) (int, error) { return 0, nil })
	if _, err := f.Get(ctx); !errors.Is(err, durable.ErrStaleContext) {
		t.Errorf("Go(...).Get = %v; want ErrStaleContext", err)
	}
	if _, err := durable.AwaitAny(ctx, durable.NewTimer(ctx, 1)); !errors.Is(err, durable.ErrStaleContext) {
		t.Errorf("AwaitAny = %v; want ErrStaleContext", err)
	}
	_ = durable.Now(ctx) // returns, does not kill the caller
}

func TestContextUsedByTwoGoroutines(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	wf := durable.Define("shared-context", func(ctx durable.Context, _ int) (string, error) {
		started, release := make(chan struct{}), make(chan struct{})
		other := make(chan error, 1)
		go func() {
			<-started
			_, err := durable.Step(ctx, "other", func(context.Context) (int, error) { return 2, nil })
			other <- err
			close(release)
		}()
		if _, err := durable.Step(ctx, "first", func(context.Context) (int, error) {
			close(started)
			<-release
			return 1, nil
		}); err != nil {
			return "", err
		}
		err := <-other
		if !errors.Is(err, durable.ErrConcurrentContext) {
			return "", errors.New("second goroutine's Step: want ErrConcurrentContext")
		}
		return err.Error(), nil
	})
	e, err := durable.New(journal.NewMemory(), quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	msg, err := durable.Run(ctx, e, wf, "sc-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := "durable.Go"; !strings.Contains(msg, want) {
		t.Errorf("error %q does not point to %s", msg, want)
	}
}
