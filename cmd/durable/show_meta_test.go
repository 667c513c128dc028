package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/durable-go/durable"
)

// tracer journals a trace context with each run, as the otel module does.
type tracer struct{ durable.BaseObserver }

func (tracer) InjectRun(context.Context, durable.RunEvent) map[string]string {
	return map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
}

// TestShowMeta: show prints what the observer journaled with the run.
func TestShowMeta(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "meta.db")
	wf := durable.Define("traced", func(ctx durable.Context, _ int) (int, error) { return 1, nil })
	e, err := durable.Open(path, &durable.Config{Workflows: []durable.Definition{wf}, Observer: tracer{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Run(t.Context(), e, wf, "t-1", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := durableCmd(t, "show", path, "t-1")
	wantCode(t, code, exitOK)
	wantContains(t, "show t-1", stdout, "meta       traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n")
}
