package durableotel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/durabletest"
	durableotel "github.com/durable-go/durable/otel"
	"github.com/durable-go/durable/otel/internal/spantree"
	"github.com/durable-go/durable/retry"
)

// telemetry is a real SDK tracer and meter provider, recording spans in
// memory and reading metrics on demand.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	obs    *durableotel.Observer
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	obs, err := durableotel.New(&durableotel.Options{TracerProvider: tel.tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	tel.obs = obs
	return tel
}

// tree prints the ended spans, without times.
func (tel *telemetry) tree() string {
	var b bytes.Buffer
	spantree.Print(&b, spantree.FromSDK(tel.spans.Ended()), false)
	return b.String()
}

func (tel *telemetry) config(t *testing.T, wfs ...durable.Definition) *durable.Config {
	return &durable.Config{Workflows: wfs, Observer: tel.obs, Logger: slog.New(slog.DiscardHandler)}
}

var child = durable.Define("child", func(ctx durable.Context, n int) (int, error) {
	return durable.Step(ctx, "double", func(context.Context) (int, error) { return 2 * n, nil })
})

// TestSpanTree: the spans of a workflow with steps, a retry, a child and
// a Go fan-out, under the caller's span; a step function's context
// carries its step's span.
func TestSpanTree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry(t)
		var mu sync.Mutex
		stepParents := map[string]string{} // step name -> span id its context carries
		note := func(ctx context.Context, name string) {
			mu.Lock()
			defer mu.Unlock()
			stepParents[name] = trace.SpanContextFromContext(ctx).SpanID().String()
		}
		tries := 0
		wf := durable.Define("parent", func(ctx durable.Context, _ string) (int, error) {
			a, err := durable.Step(ctx, "a", func(ctx context.Context) (int, error) { note(ctx, "a"); return 1, nil })
			if err != nil {
				return 0, err
			}
			b, err := durable.Step(ctx, "flaky", func(ctx context.Context) (int, error) {
				if tries++; tries == 1 {
					return 0, errors.New("503 service unavailable")
				}
				return 10, nil
			}, durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Second)}))
			if err != nil {
				return 0, err
			}
			c, err := durable.RunChild(ctx, child, "", 50)
			if err != nil {
				return 0, err
			}
			f1 := durable.Go(ctx, "g1", func(ctx context.Context) (int, error) { note(ctx, "g1"); return 1000, nil })
			f2 := durable.Go(ctx, "g2", func(ctx context.Context) (int, error) { note(ctx, "g2"); return 2000, nil })
			if err := durable.AwaitAll(ctx, f1, f2); err != nil {
				return 0, err
			}
			g1, _ := f1.Get(ctx)
			g2, _ := f2.Get(ctx)
			return a + b + c + g1 + g2, nil
		})
		env := durabletest.New(t, tel.config(t, wf, child))
		ctx, caller := tel.tp.Tracer("test").Start(t.Context(), "caller")
		out, err := durable.Run(ctx, env.Engine, wf, "p", "")
		caller.End()
		if err != nil || out != 3111 {
			t.Fatalf("Run = %d, %v", out, err)
		}
		synctest.Wait()
		got := tel.tree()
		traceID := caller.SpanContext().TraceID().String()
		// In the bubble every span starts at the same instant, so siblings
		// that overlap (the child's run, the Go steps) print in the order
		// they ended, which the goroutines decide: any order of them is right.
		head := "trace " + traceID + `
  caller
    durable.run parent run=p
      · retry scheduled
      durable.step a run=p attempt=1
      durable.step flaky run=p attempt=1 ERROR "503 service unavailable"
      durable.step flaky run=p attempt=2
`
		blocks := []string{
			"      durable.run child run=p/2\n        durable.step double run=p/2 attempt=1\n",
			"      durable.step g1 run=p attempt=1\n",
			"      durable.step g2 run=p attempt=1\n",
		}
		var wants []string
		for _, o := range [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
			wants = append(wants, head+blocks[o[0]]+blocks[o[1]]+blocks[o[2]])
		}
		if !slices.Contains(wants, got) {
			t.Fatalf("span tree:\n%s\nwant (the last three siblings in any order):\n%s", got, wants[0])
		}
		for _, s := range tel.spans.Ended() {
			name := strings.TrimPrefix(s.Name(), "durable.step ")
			if id, ok := stepParents[name]; ok && id != s.SpanContext().SpanID().String() {
				t.Errorf("step %q's function ran with span %s in its context, want its own span %s", name, id, s.SpanContext().SpanID())
			}
		}
		if len(stepParents) != 3 {
			t.Errorf("step functions saw spans %v, want a, g1 and g2", stepParents)
		}
	})
}

// TestTraceSurvivesRestart: a run that a restart interrupts is one trace:
// the resumed incarnation's span is in the caller's trace, under the
// caller's span, with a "resumed" event; steps that replay make no span.
func TestTraceSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry(t)
		calls := map[string]int{}
		wf := durable.Define("napper", func(ctx durable.Context, _ string) (string, error) {
			for _, name := range []string{"before-1", "before-2"} {
				if _, err := durable.Step(ctx, name, func(context.Context) (int, error) { calls[name]++; return 1, nil }); err != nil {
					return "", err
				}
			}
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return "", err
			}
			return durable.Step(ctx, "after", func(context.Context) (string, error) { calls["after"]++; return "done", nil })
		})
		env := durabletest.New(t, tel.config(t, wf))
		ctx, caller := tel.tp.Tracer("test").Start(t.Context(), "caller")
		if _, err := durable.Start(ctx, env.Engine, wf, "n", ""); err != nil {
			t.Fatal(err)
		}
		caller.End()
		time.Sleep(time.Minute)
		synctest.Wait()
		env.Restart()
		if out, err := durable.Run(t.Context(), env.Engine, wf, "n", ""); err != nil || out != "done" {
			t.Fatalf("Run after the restart = %q, %v", out, err)
		}
		synctest.Wait()
		traceID := caller.SpanContext().TraceID()
		var runSpans []sdktrace.ReadOnlySpan
		steps := map[string]int{}
		for _, s := range tel.spans.Ended() {
			if s.SpanContext().TraceID() != traceID {
				t.Errorf("span %q is in trace %s, want the caller's %s", s.Name(), s.SpanContext().TraceID(), traceID)
			}
			switch {
			case s.Name() == "durable.run napper":
				runSpans = append(runSpans, s)
			case strings.HasPrefix(s.Name(), "durable.step "):
				steps[strings.TrimPrefix(s.Name(), "durable.step ")]++
			}
		}
		if want := map[string]int{"before-1": 1, "before-2": 1, "after": 1}; !mapsEqual(steps, want) {
			t.Errorf("step spans %v, want one each %v (none for replayed steps)", steps, want)
		}
		if len(runSpans) != 2 {
			t.Fatalf("%d run spans, want 2 (before and after the restart):\n%s", len(runSpans), tel.tree())
		}
		first, second := runSpans[0], runSpans[1]
		for _, s := range runSpans {
			if s.Parent().SpanID() != caller.SpanContext().SpanID() {
				t.Errorf("a run span has parent %s, want the caller's span %s", s.Parent().SpanID(), caller.SpanContext().SpanID())
			}
		}
		if ev := events(first); !slices.Equal(ev, []string{"stopped reason=close position=3"}) {
			t.Errorf("first run span's events %q, want it stopped by the close", ev)
		}
		if ev := events(second); len(ev) != 2 || ev[0] != "resumed reason=recovery position=3 records=3" || !strings.HasPrefix(ev[1], "replayed") {
			t.Errorf("second run span's events %q, want resumed (recovery, at position 3, 3 records) then replayed", ev)
		}
		if calls["before-1"] != 1 || calls["before-2"] != 1 || calls["after"] != 1 {
			t.Errorf("step calls %v, want one each", calls)
		}
	})
}

// events lists a span's events with a few of their attributes.
func events(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, e := range s.Events() {
		line := e.Name
		for _, k := range []string{"durable.reason", "durable.resume.reason", "durable.position", "durable.replay.records"} {
			for _, a := range e.Attributes {
				if string(a.Key) == k {
					line += fmt.Sprintf(" %s=%s", k[strings.LastIndexByte(k, '.')+1:], a.Value.Emit())
				}
			}
		}
		out = append(out, line)
	}
	return out
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestFailedStepStatus: a failed step's span and its run's span have an
// error status and the error recorded.
func TestFailedStepStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry(t)
		wf := durable.Define("failing", func(ctx durable.Context, _ string) (int, error) {
			return durable.Step(ctx, "boom", func(context.Context) (int, error) { return 0, errors.New("card declined") },
				durable.WithRetry(retry.Policy{MaxAttempts: 1}))
		})
		env := durabletest.New(t, tel.config(t, wf))
		if _, err := durable.Run(t.Context(), env.Engine, wf, "f", ""); err == nil {
			t.Fatal("Run of a failing workflow succeeded")
		}
		synctest.Wait()
		found := 0
		for _, s := range tel.spans.Ended() {
			switch s.Name() {
			case "durable.step boom", "durable.run failing":
				found++
				if s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, "card declined") {
					t.Errorf("span %q status %v %q, want Error naming the cause", s.Name(), s.Status().Code, s.Status().Description)
				}
				if len(s.Events()) == 0 || s.Events()[0].Name != "exception" {
					t.Errorf("span %q events %v, want the error recorded", s.Name(), s.Events())
				}
			case "durable.start failing":
				found++ // no caller span: a root start span
				if s.Status().Code == codes.Error || s.Parent().IsValid() {
					t.Errorf("the start span has an error status or a parent")
				}
			}
		}
		if found != 3 {
			t.Fatalf("found %d of the start, run and step spans:\n%s", found, tel.tree())
		}
	})
}

// TestMetrics checks the instruments' values after a known workload:
// three runs of two steps whose second fails once, then sleep, with a
// run cache of one, so that runs are evicted and reloaded.
func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry(t)
		var mu sync.Mutex
		tries := map[string]int{}
		wf := durable.Define("work", func(ctx durable.Context, id string) (int, error) {
			if _, err := durable.Step(ctx, "a", func(context.Context) (int, error) { return 1, nil }); err != nil {
				return 0, err
			}
			if _, err := durable.Step(ctx, "b", func(context.Context) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				if tries[id]++; tries[id] == 1 {
					return 0, errors.New("once")
				}
				return 2, nil
			}, durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second)})); err != nil {
				return 0, err
			}
			return 3, durable.Sleep(ctx, time.Hour)
		})
		cfg := tel.config(t, wf)
		cfg.MaxCachedRuns = 1
		env := durabletest.New(t, cfg)
		var hs []*durable.Handle[int]
		for i := range 3 {
			h, err := durable.Start(t.Context(), env.Engine, wf, fmt.Sprint("w", i), fmt.Sprint("w", i))
			if err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		for _, h := range hs {
			if _, err := h.Result(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		var rm metricdata.ResourceMetrics
		if err := tel.reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		m := flatten(rm)
		for name, want := range map[string]int64{
			"durable.steps.started":                    9, // 3 × (a, b#1, b#2)
			"durable.steps.completed":                  6,
			"durable.steps.failed":                     3,
			"durable.step.retries":                     3,
			"durable.runs.started":                     3,
			"durable.runs.ended{status=completed}":     3,
			"durable.step.duration{count}":             9,
			"durable.step.duration{outcome=failed}":    3,
			"durable.step.duration{outcome=completed}": 6,
			"durable.runs.cached":                      0, // every wait ended
		} {
			if m[name] != want {
				t.Errorf("%s = %d, want %d", name, m[name], want)
			}
		}
		// No restart here: every resume is the load of an evicted run. The
		// memory store is shared (a journal.Coordinator), so an evicted idle
		// run is released and its load is a claim, reason "recovery".
		evicted := m["durable.runs.evicted"]
		reloaded := m["durable.runs.resumed{reason=reload}"] + m["durable.runs.resumed{reason=recovery}"]
		if evicted < 2 || reloaded != evicted || m["durable.replay.duration{count}"] != reloaded {
			t.Errorf("evicted %d, reloaded %d, replays timed %d: want at least 2 evictions (3 runs waiting in a cache of 1), each reloaded and its replay timed once",
				evicted, reloaded, m["durable.replay.duration{count}"])
		}
		// Every commit is counted once in the batches; memory commits one at a time.
		if c, b := m["durable.commit.batch{count}"], m["durable.commit.batch{sum}"]; c == 0 || b != c || m["durable.commit.duration{count}"] != c {
			t.Errorf("commit batches: %d transactions, %d commits, %d durations; want equal and not zero (the memory store commits one call per transaction)",
				c, b, m["durable.commit.duration{count}"])
		}
	})
}

// flatten turns the collected metrics into name{attr=value} -> value,
// summing over the attributes not named, and {count}/{sum} of histograms.
func flatten(rm metricdata.ResourceMetrics) map[string]int64 {
	out := map[string]int64{}
	shown := []attribute.Key{"durable.run.status", "durable.step.outcome", "durable.resume.reason"}
	key := func(name string, set attribute.Set) []string {
		keys := []string{name}
		for _, k := range shown {
			if v, ok := set.Value(k); ok {
				keys = append(keys, fmt.Sprintf("%s{%s=%s}", name, k[strings.LastIndexByte(string(k), '.')+1:], v.Emit()))
			}
		}
		return keys
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mm := range sm.Metrics {
			switch d := mm.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					for _, k := range key(mm.Name, p.Attributes) {
						out[k] += p.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[mm.Name+"{count}"] += int64(p.Count)
					for _, k := range key(mm.Name, p.Attributes)[1:] {
						out[k] += int64(p.Count)
					}
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					out[mm.Name+"{count}"] += int64(p.Count)
					out[mm.Name+"{sum}"] += p.Sum
				}
			}
		}
	}
	return out
}
