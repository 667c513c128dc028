package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

func openEngine(t *testing.T, path string, wfs ...durable.Definition) *durable.Engine {
	t.Helper()
	e, err := durable.Open(path, &durable.Config{Workflows: wfs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("durable.Open(%s) = %v", path, err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCancel(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)

	stdout, _, code := durableCmd(t, "cancel", path, "signup-1")
	wantCode(t, code, exitOK)
	wantContains(t, "stdout", stdout, `run "signup-1": cancel requested`)
	stdout, _, code = durableCmd(t, "show", path, "signup-1")
	wantCode(t, code, exitOK)
	wantContains(t, "show", stdout, "cancel     requested", "status     running")

	stdout, _, code = durableCmd(t, "cancel", path, "signup-1")
	wantCode(t, code, exitOK)
	wantContains(t, "stdout", stdout, "cancel already requested")

	for id, want := range map[string]string{
		"order-1": `run "order-1" has already completed; there is nothing to cancel`,
		"order-3": `run "order-3" has already failed`,
		"nope":    `no run "nope"`,
	} {
		_, stderr, code := durableCmd(t, "cancel", path, id)
		wantCode(t, code, exitFailure)
		wantContains(t, "stderr", stderr, want)
	}
	stdout, _, code = durableCmd(t, "cancel", path, "signup-2")
	wantCode(t, code, exitOK)
	wantContains(t, "stdout", stdout, "already canceled")

	// The application acts on the request when it opens the journal.
	e := openEngine(t, path, orderWF, batchWF, signupWF)
	if err := waitFor(testCtx(t), e, "signup-1", func(i durable.RunInfo) bool { return i.Status == durable.StatusCanceled }); err != nil {
		t.Fatal(err)
	}
}

func TestResume(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)

	for id, want := range map[string]string{
		"order-1": `run "order-1" is completed; only a parked run can be resumed`,
		"nope":    `no run "nope"`,
	} {
		_, stderr, code := durableCmd(t, "resume", path, id)
		wantCode(t, code, exitFailure)
		wantContains(t, "stderr", stderr, want)
	}
	stdout, _, code := durableCmd(t, "resume", path, "signup-1")
	wantCode(t, code, exitOK)
	wantContains(t, "stdout", stdout, "already running")

	stdout, _, code = durableCmd(t, "resume", path, "legacy-1")
	wantCode(t, code, exitOK)
	wantContains(t, "stdout", stdout, `run "legacy-1": set to running`)
	stdout, _, _ = durableCmd(t, "list", path, "-status", "running")
	wantContains(t, "list -status running", stdout, "legacy-1")

	// An engine with the old code resumes it: it receives the message
	// that came while it was parked.
	ctx := testCtx(t)
	e := openEngine(t, path, legacyWF)
	if err := waitFor(ctx, e, "legacy-1", func(i durable.RunInfo) bool { return i.Status == durable.StatusCompleted }); err != nil {
		t.Fatal(err)
	}
}

func TestLockedByApplication(t *testing.T) {
	t.Parallel()
	path := demoJournal(t)
	e := openEngine(t, path, orderWF, batchWF, signupWF)
	for _, args := range [][]string{{"list", path}, {"show", path, "order-1"}, {"cancel", path, "signup-1"}, {"resume", path, "legacy-1"}, {"check", path}, {"compact", path}} {
		_, stderr, code := durableCmd(t, args...)
		wantCode(t, code, exitFailure)
		wantContains(t, "stderr", stderr, "the journal is open in another process (pid unknown); stop it or use a copy")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, code := durableCmd(t, "list", path)
	wantCode(t, code, exitOK)
}
