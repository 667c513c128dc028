package durable_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// Every condition that both packages name matches through either name,
// whichever package's error it is.
func TestSentinelsMatchAcrossPackages(t *testing.T) {
	t.Parallel()
	pairs := []struct {
		name string
		d, j error
	}{
		{"closed", durable.ErrClosed, journal.ErrClosed},
		{"invalid", durable.ErrInvalid, journal.ErrInvalid},
		{"not found", durable.ErrNotFound, journal.ErrNotFound},
		{"finished", durable.ErrFinished, journal.ErrFinished},
	}
	for _, p := range pairs {
		for _, err := range []error{p.d, p.j, fmt.Errorf("wrapped: %w", p.d), fmt.Errorf("wrapped: %w", p.j)} {
			if !errors.Is(err, p.d) || !errors.Is(err, p.j) {
				t.Errorf("%s: %v matches durable's %v: %v, journal's %v: %v", p.name, err, p.d, errors.Is(err, p.d), p.j, errors.Is(err, p.j))
			}
		}
	}
	if errors.Is(durable.ErrClosed, journal.ErrInvalid) || errors.Is(journal.ErrClosed, durable.ErrInvalid) {
		t.Error("sentinels of different conditions match")
	}
}

// After Close, what an engine that opened its file returns from the closed
// store matches durable.ErrClosed.
func TestClosedEngineErrorsMatchErrClosed(t *testing.T) {
	t.Parallel()
	e, err := durable.Open(filepath.Join(t.TempDir(), "j.db"), quiet(nil))
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, e)
	ctx := context.Background()
	_, getErr := e.Get(ctx, "r")
	_, listErr := e.List(ctx, durable.ListOptions{})
	_, purgeErr := e.Purge(ctx, time.Now())
	for name, err := range map[string]error{"Get": getErr, "List": listErr, "Purge": purgeErr, "Cancel": e.Cancel(ctx, "r"), "Send": durable.Send(ctx, e, "r", "c", 1)} {
		if !errors.Is(err, durable.ErrClosed) || !errors.Is(err, journal.ErrClosed) {
			t.Errorf("%s after Close = %v; want it to match durable.ErrClosed and journal.ErrClosed", name, err)
		}
	}
}
