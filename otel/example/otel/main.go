// Command otel shows one OpenTelemetry trace across a crash and two
// processes:
//
//	cd otel && go run ./example/otel
//
// It starts itself as a worker process that runs an order workflow on a
// bbolt journal with the durableotel observer, exporting every span as it
// ends (the stdout exporter, into a file), and kills the worker with
// SIGKILL in the middle of a step. A second worker opens the journal,
// resumes the run from its journaled trace context and finishes it. Then
// the program reads both workers' spans and prints them as one tree: the
// first worker's steps, the "resumed" event saying where the run went on,
// the second worker's steps, and a child workflow, all in one trace.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/internal/demo"
	durableotel "github.com/durable-go/durable/otel"
	"github.com/durable-go/durable/otel/internal/spantree"
	"github.com/durable-go/durable/retry"
)

// Environment of a worker process.
const (
	envRole    = "DURABLE_OTEL_EXAMPLE_ROLE" // "1" or "2"
	envJournal = "DURABLE_OTEL_EXAMPLE_JOURNAL"
	envSpans   = "DURABLE_OTEL_EXAMPLE_SPANS"
)

const runID = "order-7"

// work is a step's work: d of waiting, or its context's end.
func work(ctx context.Context, name string, d time.Duration) error {
	fmt.Printf("worker %s: step %s executing\n", os.Getenv(envRole), name)
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var invoice = durable.Define("invoice", func(ctx durable.Context, order string) (string, error) {
	return durable.Step(ctx, "render-pdf", func(ctx context.Context) (string, error) {
		return "invoice-" + order + ".pdf", work(ctx, "render-pdf", 100*time.Millisecond)
	})
})

var order = durable.Define("order", func(ctx durable.Context, order string) (string, error) {
	if _, err := durable.Step(ctx, "reserve-stock", func(ctx context.Context) (int, error) {
		return 3, work(ctx, "reserve-stock", 150*time.Millisecond)
	}); err != nil {
		return "", err
	}
	if _, err := durable.Step(ctx, "charge-card", func(ctx context.Context) (string, error) {
		info, _ := durable.StepInfoFrom(ctx)
		if err := work(ctx, "charge-card", 100*time.Millisecond); err != nil {
			return "", err
		}
		if info.Attempt == 1 {
			return "", errors.New("payment gateway timeout")
		}
		return "ch_1", nil
	}, durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(200 * time.Millisecond)})); err != nil {
		return "", err
	}
	if _, err := durable.Step(ctx, "ship", func(ctx context.Context) (string, error) {
		return "parcel-1", work(ctx, "ship", 1500*time.Millisecond) // the first worker dies here
	}); err != nil {
		return "", err
	}
	pdf, err := durable.RunChild(ctx, invoice, "", order)
	if err != nil {
		return "", err
	}
	if _, err := durable.Step(ctx, "notify", func(ctx context.Context) (bool, error) {
		return true, work(ctx, "notify", 100*time.Millisecond)
	}); err != nil {
		return "", err
	}
	return "shipped with " + pdf, nil
})

func main() {
	log.SetFlags(0)
	if role := os.Getenv(envRole); role != "" {
		worker(role == "1")
		return
	}
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run runs the two workers, one after the other, and prints their spans.
func run(w io.Writer) error {
	dir, err := os.MkdirTemp("", "durable-otel-example-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	journal := filepath.Join(dir, "orders.journal")
	spans := []string{filepath.Join(dir, "spans-1.json"), filepath.Join(dir, "spans-2.json")}

	fmt.Fprintln(w, "== worker 1 starts run", runID, "and is killed with SIGKILL during step ship")
	w1 := demo.Start(envRole+"=1", envJournal+"="+journal, envSpans+"="+spans[0])
	killed := false
	for line := range w1.Lines {
		fmt.Fprintln(w, "  "+line)
		if strings.Contains(line, "step ship executing") {
			time.Sleep(300 * time.Millisecond)
			w1.Kill()
			killed = true
			fmt.Fprintln(w, "  (worker 1 killed)")
			break
		}
	}
	if !killed {
		return fmt.Errorf("worker 1 ended before step ship: %v", w1.Wait())
	}

	fmt.Fprintln(w, "== worker 2 opens the journal and resumes the run")
	w2 := demo.Start(envRole+"=2", envJournal+"="+journal, envSpans+"="+spans[1])
	for line := range w2.Lines {
		fmt.Fprintln(w, "  "+line)
	}
	if err := w2.Wait(); err != nil {
		return fmt.Errorf("worker 2: %w", err)
	}

	var all []spantree.Span
	for i, path := range spans {
		ss, err := readSpans(path, fmt.Sprintf("worker %d", i+1))
		if err != nil {
			return err
		}
		all = append(all, ss...)
	}
	fmt.Fprintln(w, "== the spans both workers exported, as one tree (offset from the first span, duration):")
	spantree.Print(w, all, true)
	return nil
}

// worker runs the order workflow with the OpenTelemetry observer,
// exporting each span to the spans file as soon as it ends, so that what
// ended before a SIGKILL is there. The first worker starts the run under
// a "place order" span; the second only waits for it (Open resumed it).
func worker(first bool) {
	f, err := os.OpenFile(os.Getenv(envSpans), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	obs, err := durableotel.New(&durableotel.Options{TracerProvider: tp})
	if err != nil {
		log.Fatal(err)
	}
	e, err := durable.Open(os.Getenv(envJournal), &durable.Config{
		Workflows: []durable.Definition{order, invoice},
		Observer:  obs,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	var h *durable.Handle[string]
	if first {
		reqCtx, span := tp.Tracer("example").Start(ctx, "POST /orders")
		h, err = durable.Start(reqCtx, e, order, runID, "o-7")
		span.End()
	} else {
		h, err = durable.Attach(ctx, e, order, runID)
	}
	if err != nil {
		log.Fatal(err)
	}
	out, err := h.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("worker %s: run %s finished: %s\n", os.Getenv(envRole), runID, out)
}

// jsonSpan is what readSpans reads of the stdout exporter's JSON.
type jsonSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	StartTime   time.Time
	EndTime     time.Time
	Attributes  []jsonAttr
	Events      []struct {
		Name       string
		Attributes []jsonAttr
	}
	Status struct{ Code, Description string }
}

type jsonAttr struct {
	Key   string
	Value struct{ Value any }
}

func attrMap(as []jsonAttr) map[string]string {
	m := map[string]string{}
	for _, a := range as {
		m[a.Key] = fmt.Sprint(a.Value.Value)
	}
	return m
}

// readSpans reads the spans the stdout exporter wrote to path.
func readSpans(path, process string) ([]spantree.Span, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []spantree.Span
	dec := json.NewDecoder(f)
	for {
		var s jsonSpan
		if err := dec.Decode(&s); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		sp := spantree.Span{
			Name: s.Name, TraceID: s.SpanContext.TraceID, SpanID: s.SpanContext.SpanID,
			Start: s.StartTime, End: s.EndTime, Attrs: attrMap(s.Attributes), Process: process,
		}
		if p := s.Parent.SpanID; p != "" && strings.Trim(p, "0") != "" {
			sp.ParentID = p
		}
		if s.Status.Code == "Error" {
			sp.Error = s.Status.Description
		}
		for _, e := range s.Events {
			sp.Events = append(sp.Events, spantree.Event{Name: e.Name, Attrs: attrMap(e.Attributes)})
		}
		out = append(out, sp)
	}
}
