package enginetest

// Waiting helpers shared by the engine's behaviour tests (the root
// package's and this suite).

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

// WaitLimit bounds every wait of these tests: a condition that is not met
// by then is a failure (a hang), never a timing assertion.
const WaitLimit = 10 * time.Second

// Ctx returns a context that bounds the calls of a test that wait for
// runs, canceled when t ends.
func Ctx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*WaitLimit)
	t.Cleanup(cancel)
	return ctx
}

// Quiet returns a copy of cfg whose engine does not log (parked runs and
// abandoned steps are expected in tests).
func Quiet(cfg *durable.Config) *durable.Config {
	var c durable.Config
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &c
}

// Recv waits for a value on ch.
func Recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(WaitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// WaitFor polls cond until it holds.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// WaitInfo waits until ok says run id got there, and returns its info.
func WaitInfo(t *testing.T, e *durable.Engine, id string, ok func(durable.RunInfo) bool) durable.RunInfo {
	t.Helper()
	var info durable.RunInfo
	var err error
	WaitFor(t, "run "+id, func() bool {
		info, err = e.Get(context.Background(), id)
		return err == nil && ok(info)
	})
	return info
}

// WaitStatus waits until run id has status st and returns its info.
func WaitStatus(t *testing.T, e *durable.Engine, id string, st durable.Status) durable.RunInfo {
	t.Helper()
	var info durable.RunInfo
	var err error
	WaitFor(t, fmt.Sprintf("run %q to be %v", id, st), func() bool {
		info, err = e.Get(context.Background(), id)
		return err == nil && info.Status == st
	})
	return info
}

// MustGet returns the info of run id, failing t if Get fails.
func MustGet(t *testing.T, e *durable.Engine, id string) durable.RunInfo {
	t.Helper()
	info, err := e.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return info
}

// MustClose closes e, failing t if Close fails or hangs.
func MustClose(t *testing.T, e *durable.Engine) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.Close() }()
	if err := Recv(t, done, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
