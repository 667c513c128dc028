package postgrestest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
	durableotel "github.com/durable-go/durable/otel"
)

// process is one engine's telemetry, as a process of its own would have.
type process struct {
	spans *tracetest.SpanRecorder
	tp    *sdktrace.TracerProvider
	obs   *durableotel.Observer
}

func newProcess(t *testing.T) *process {
	p := &process{spans: tracetest.NewSpanRecorder()}
	p.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p.spans))
	obs, err := durableotel.New(&durableotel.Options{TracerProvider: p.tp,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))})
	if err != nil {
		t.Fatal(err)
	}
	p.obs = obs
	return p
}

// stepSpans lists the names of a process's step spans.
func (p *process) stepSpans() []string {
	var out []string
	for _, s := range p.spans.Ended() {
		if name, ok := strings.CutPrefix(s.Name(), "durable.step "); ok {
			out = append(out, name)
		}
	}
	return out
}

var flow = durable.Define("pg-traced", func(ctx durable.Context, _ string) (string, error) {
	if _, err := durable.Step(ctx, "one", func(context.Context) (int, error) { return 1, nil }); err != nil {
		return "", err
	}
	msg, err := durable.Receive[string](ctx, "go")
	if err != nil {
		return "", err
	}
	return durable.Step(ctx, "two", func(context.Context) (string, error) { return "got " + msg, nil })
})

// TestTraceAcrossEngines: a run started by one engine and finished by
// another on the same PostgreSQL journal is one trace: the second
// engine's run span is in the caller's trace, under the caller's span,
// with a "resumed" event, and only the steps it executed have spans.
func TestTraceAcrossEngines(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	engine := func(p *process) *durable.Engine {
		s, err := postgres.Open(ctx, url, &postgres.Options{Schema: schema, LeaseTimeout: time.Second, PollInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		e, err := durable.New(s, &durable.Config{Workflows: []durable.Definition{flow}, Observer: p.obs, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}

	first, second := newProcess(t), newProcess(t)
	e1 := engine(first)
	reqCtx, caller := first.tp.Tracer("test").Start(ctx, "caller")
	if _, err := durable.Start(reqCtx, e1, flow, "pg-1", ""); err != nil {
		t.Fatal(err)
	}
	caller.End()
	for { // until the run waits for its message
		info, err := e1.Get(ctx, "pg-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Pending) == 1 && info.Pending[0].Kind == "receive" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the run never waited for its message: %+v", info)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := engine(second)
	if err := durable.Send(ctx, e2, "pg-1", "go", "now"); err != nil {
		t.Fatal(err)
	}
	h, err := durable.Attach(ctx, e2, flow, "pg-1")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := h.Result(ctx); err != nil || out != "got now" {
		t.Fatalf("Result on the second engine = %q, %v", out, err)
	}
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}

	traceID := caller.SpanContext().TraceID()
	var start string
	for _, p := range []*process{first, second} {
		for _, s := range p.spans.Ended() {
			if s.SpanContext().TraceID() != traceID {
				t.Errorf("span %q is in trace %s, want the caller's %s", s.Name(), s.SpanContext().TraceID(), traceID)
			}
			if s.Name() == "durable.run pg-traced" {
				if start == "" {
					start = s.Parent().SpanID().String()
					if start != caller.SpanContext().SpanID().String() {
						t.Errorf("the run span's parent is %s, want the caller's span", start)
					}
				} else if got := s.Parent().SpanID().String(); got != start {
					t.Errorf("run spans under %s and %s, want one parent", start, got)
				}
			}
		}
	}
	if got := first.stepSpans(); len(got) != 1 || got[0] != "one" {
		t.Errorf("the first engine's step spans %q, want [one]", got)
	}
	if got := second.stepSpans(); len(got) != 1 || got[0] != "two" {
		t.Errorf("the second engine's step spans %q, want [two] (none for the replayed step)", got)
	}
	resumed := false
	for _, s := range second.spans.Ended() {
		for _, ev := range s.Events() {
			resumed = resumed || (s.Name() == "durable.run pg-traced" && ev.Name == "resumed")
		}
	}
	if !resumed {
		t.Errorf("the second engine's run span has no \"resumed\" event")
	}
}
