package durable_test

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

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/retry"
)

// recorder is an Observer that writes one line per event.
type recorder struct {
	durable.BaseObserver
	mu      sync.Mutex
	lines   []string
	commits int
	ops     int
}

type ctxKey string

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.lines = nil
	return out
}

func (r *recorder) InjectRun(ctx context.Context, ev durable.RunEvent) map[string]string {
	from, _ := ctx.Value(ctxKey("run")).(string)
	if from == "" {
		from, _ = ctx.Value(ctxKey("caller")).(string)
	}
	r.add("inject %s from %q", ev.RunID, from)
	return map[string]string{"origin": from, "id": ev.RunID}
}

func (r *recorder) RunStarted(ctx context.Context, ev durable.RunEvent) context.Context {
	r.add("started %s meta %v", ev.RunID, ev.Meta)
	return context.WithValue(ctx, ctxKey("run"), ev.RunID)
}

func (r *recorder) RunResumed(ctx context.Context, ev durable.RunEvent) context.Context {
	r.add("resumed %s (%s) at %d with %d records, meta %v", ev.RunID, ev.Reason, ev.Position, ev.Records, ev.Meta)
	return context.WithValue(ctx, ctxKey("run"), ev.RunID)
}

func (r *recorder) RunReplayed(ctx context.Context, ev durable.RunEvent) {
	r.add("replayed %s to %d", ev.RunID, ev.Position)
}

func (r *recorder) RunFinished(ctx context.Context, ev durable.RunEvent) {
	r.add("finished %s %s err=%v run ctx %v", ev.RunID, ev.Status, ev.Err != nil, ctx.Value(ctxKey("run")))
}

func (r *recorder) RunStopped(ctx context.Context, ev durable.RunEvent) {
	r.add("stopped %s %s", ev.RunID, ev.Reason)
}

func (r *recorder) StepStarted(ctx context.Context, ev durable.StepEvent) context.Context {
	r.add("step %s %s#%d", ev.RunID, ev.Step, ev.Attempt)
	return context.WithValue(ctx, ctxKey("step"), fmt.Sprintf("%s#%d", ev.Step, ev.Attempt))
}

func (r *recorder) StepFinished(ctx context.Context, ev durable.StepEvent) {
	if ev.Replayed {
		r.add("replayed step %s %s", ev.RunID, ev.Step)
		return
	}
	r.add("step done %s %s#%d err=%v ctx %v", ev.RunID, ev.Step, ev.Attempt, ev.Err != nil, ctx.Value(ctxKey("step")))
}

func (r *recorder) RetryScheduled(ctx context.Context, ev durable.StepEvent) {
	r.add("retry %s %s after #%d in %v", ev.RunID, ev.Step, ev.Attempt, ev.NextAt.Sub(time.Now()).Round(time.Second))
}

func (r *recorder) WaitStarted(ctx context.Context, ev durable.WaitEvent) {
	r.add("wait %s %s %q", ev.RunID, ev.Kind, ev.Name)
}

func (r *recorder) WaitEnded(ctx context.Context, ev durable.WaitEvent) {
	r.add("waited %s %s %q interrupted=%v", ev.RunID, ev.Kind, ev.Name, ev.Interrupted)
}

func (r *recorder) Committed(ev durable.CommitEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commits += ev.Commits
	r.ops += ev.Operations
}

var obsChild = durable.Define("obs-child", func(ctx durable.Context, n int) (int, error) {
	return durable.Step(ctx, "double", func(context.Context) (int, error) { return 2 * n, nil })
})

// TestObserverEvents runs a workflow with a retry, a sleep, a receive, a
// child and a Go fan-out, restarts the engine during the sleep, and
// checks the events the observer saw, on both sides of the restart.
func TestObserverEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		attempts := 0
		var stepVals []string
		var mu sync.Mutex
		wf := durable.Define("obs", func(ctx durable.Context, _ string) (int, error) {
			val := func(ctx context.Context) {
				mu.Lock()
				defer mu.Unlock()
				v, _ := ctx.Value(ctxKey("step")).(string)
				stepVals = append(stepVals, v)
			}
			a, err := durable.Step(ctx, "a", func(ctx context.Context) (int, error) { val(ctx); return 1, nil })
			if err != nil {
				return 0, err
			}
			b, err := durable.Step(ctx, "flaky", func(ctx context.Context) (int, error) {
				val(ctx)
				attempts++
				if attempts == 1 {
					return 0, errors.New("503")
				}
				return 10, nil
			}, durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Minute)}))
			if err != nil {
				return 0, err
			}
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return 0, err
			}
			msg, err := durable.Receive[int](ctx, "go")
			if err != nil {
				return 0, err
			}
			c, err := durable.RunChild(ctx, obsChild, "", 50)
			if err != nil {
				return 0, err
			}
			f1 := durable.Go(ctx, "g1", func(ctx context.Context) (int, error) { val(ctx); return 1000, nil })
			f2 := durable.Go(ctx, "g2", func(ctx context.Context) (int, error) { val(ctx); return 2000, nil })
			g1, err := f1.Get(ctx)
			if err != nil {
				return 0, err
			}
			g2, err := f2.Get(ctx)
			return a + b + msg + c + g1 + g2, err
		})
		rec := &recorder{}
		env := durabletest.New(t, quiet(&durable.Config{Workflows: []durable.Definition{wf, obsChild}, Observer: rec}))
		caller := context.WithValue(t.Context(), ctxKey("caller"), "the caller")
		if _, err := durable.Start(caller, env.Engine, wf, "r", ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(90 * time.Second) // past the retry, into the sleep
		synctest.Wait()
		before := rec.take()
		want := []string{
			`inject r from "the caller"`,
			`started r meta map[id:r origin:the caller]`,
			`step r a#1`,
			`step done r a#1 err=false ctx a#1`,
			`step r flaky#1`,
			`step done r flaky#1 err=true ctx flaky#1`,
			`retry r flaky after #1 in 1m0s`,
			`wait r retry "flaky"`,
			`waited r retry "flaky" interrupted=false`,
			`step r flaky#2`,
			`step done r flaky#2 err=false ctx flaky#2`,
			`wait r sleep ""`,
		}
		if !slices.Equal(before, want) {
			t.Fatalf("events before the restart:\n%s\nwant:\n%s", strings.Join(before, "\n"), strings.Join(want, "\n"))
		}

		env.Restart()
		env.SendAfter(2*time.Hour, "r", "go", 100)
		out, err := durable.Run(t.Context(), env.Engine, wf, "r", "")
		if err != nil || out != 1+10+100+100+1000+2000 {
			t.Fatalf("Run = %d, %v; want %d", out, err, 1+10+100+100+1000+2000)
		}
		synctest.Wait()
		after := rec.take()
		// The parent's and the child's events come from their own
		// goroutines and interleave in any order: check each run's in order.
		// Concurrent steps of the fan-out report in any order too.
		wantParent := []string{
			`waited r sleep "" interrupted=true`,
			`stopped r close`,
			`resumed r (recovery) at 3 with 4 records, meta map[id:r origin:the caller]`,
			`replayed step r a`,
			`replayed step r flaky`,
			`replayed r to 3`,
			// The sleep was over when the run was loaded: an idle run is
			// loaded when its timer falls due.
			`wait r receive "go"`,
			`waited r receive "go" interrupted=false`,
			`wait r child "obs-child"`,
			`waited r child "obs-child" interrupted=false`,
		}
		wantChild := []string{
			`inject r/4 from "r"`,
			`started r/4 meta map[id:r/4 origin:r]`,
			`step r/4 double#1`,
			`step done r/4 double#1 err=false ctx double#1`,
			`finished r/4 completed err=false run ctx r/4`,
		}
		parent, child := eventsOf(after, "r"), eventsOf(after, "r/4")
		if len(parent) < len(wantParent) || !slices.Equal(parent[:len(wantParent)], wantParent) {
			t.Fatalf("run r's events after the restart:\n%s\nwant first:\n%s", strings.Join(parent, "\n"), strings.Join(wantParent, "\n"))
		}
		if !slices.Equal(child, wantChild) {
			t.Fatalf("run r/4's events:\n%s\nwant:\n%s", strings.Join(child, "\n"), strings.Join(wantChild, "\n"))
		}
		rest := parent[len(wantParent):]
		if n := len(rest); n == 0 || rest[n-1] != `finished r completed err=false run ctx r` {
			t.Fatalf("last event %q, want the run's end", rest)
		}
		steps := 0
		for _, l := range rest {
			if strings.HasPrefix(l, "step done r g") {
				steps++
			}
		}
		if steps != 2 {
			t.Fatalf("fan-out events %q: want both Go steps done", rest)
		}
		mu.Lock()
		slices.Sort(stepVals)
		if want := []string{"a#1", "flaky#1", "flaky#2", "g1#1", "g2#1"}; !slices.Equal(stepVals, want) {
			t.Errorf("step functions saw the observer's values %q, want %q", stepVals, want)
		}
		mu.Unlock()
		info, err := env.Engine.Get(t.Context(), "r")
		if err != nil || info.Meta["origin"] != "the caller" || info.Meta["id"] != "r" {
			t.Errorf("Get(r).Meta = %v, %v; want what InjectRun returned at creation", info.Meta, err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.commits == 0 || rec.ops < rec.commits {
			t.Errorf("Committed reported %d commits, %d operations; want some, and at least one operation each", rec.commits, rec.ops)
		}
	})
}

// eventsOf returns the events of run id, in order: those whose first
// field naming a run ("r", "r/4") names id.
func eventsOf(events []string, id string) []string {
	var out []string
	for _, l := range events {
		for _, f := range strings.Fields(l) {
			if f == "r" || strings.HasPrefix(f, "r/") {
				if f == id {
					out = append(out, l)
				}
				break
			}
		}
	}
	return out
}

// panicky panics in every callback.
type panicky struct{ durable.BaseObserver }

func (panicky) InjectRun(context.Context, durable.RunEvent) map[string]string { panic("inject") }
func (panicky) RunStarted(context.Context, durable.RunEvent) context.Context  { panic("started") }
func (panicky) RunFinished(context.Context, durable.RunEvent)                 { panic("finished") }
func (panicky) StepStarted(context.Context, durable.StepEvent) context.Context {
	panic("step started")
}
func (panicky) StepFinished(context.Context, durable.StepEvent)   { panic("step finished") }
func (panicky) RetryScheduled(context.Context, durable.StepEvent) { panic("retry") }
func (panicky) WaitStarted(context.Context, durable.WaitEvent)    { panic("wait") }
func (panicky) WaitEnded(context.Context, durable.WaitEvent)      { panic("waited") }
func (panicky) Committed(durable.CommitEvent)                     { panic("committed") }
func (panicky) RunResumed(context.Context, durable.RunEvent) context.Context {
	panic("resumed")
}
func (panicky) RunReplayed(context.Context, durable.RunEvent) { panic("replayed") }
func (panicky) RunStopped(context.Context, durable.RunEvent)  { panic("stopped") }

// TestObserverPanics: an observer that panics in every callback neither
// crashes the process nor fails a run, and is logged once per engine.
func TestObserverPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		var mu sync.Mutex
		log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
		tries := 0
		wf := durable.Define("panicky", func(ctx durable.Context, n int) (int, error) {
			v, err := durable.Step(ctx, "s", func(ctx context.Context) (int, error) {
				if tries++; tries == 1 {
					return 0, errors.New("again")
				}
				return n + 1, nil
			}, durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Second)}))
			if err != nil {
				return 0, err
			}
			return v, durable.Sleep(ctx, time.Minute)
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, Observer: panicky{}, Logger: log})
		if _, err := durable.Start(t.Context(), env.Engine, wf, "p", 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // into the sleep
		synctest.Wait()
		env.Restart() // stopped, resumed, replayed
		if out, err := durable.Run(t.Context(), env.Engine, wf, "p", 1); err != nil || out != 2 {
			t.Fatalf("Run with a panicking observer = %d, %v; want 2, nil", out, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if n := strings.Count(buf.String(), "Observer panicked"); n != 2 {
			t.Fatalf("the log has %d lines about the observer's panics, want 2 (one per engine):\n%s", n, buf.String())
		}
	})
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestObserverFork: a forked run carries what InjectRun made from the
// context of the Fork call.
func TestObserverFork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		wf := durable.Define("obs-fork", func(ctx durable.Context, n int) (int, error) {
			return durable.Step(ctx, "s", func(context.Context) (int, error) { return n, nil })
		})
		env := durabletest.New(t, quiet(&durable.Config{Workflows: []durable.Definition{wf}, Observer: rec}))
		if _, err := durable.Run(t.Context(), env.Engine, wf, "orig", 7); err != nil {
			t.Fatal(err)
		}
		ctx := context.WithValue(t.Context(), ctxKey("caller"), "forker")
		id, err := env.Engine.Fork(ctx, "orig", 0, "copy")
		if err != nil {
			t.Fatal(err)
		}
		if out, err := durable.Run(t.Context(), env.Engine, wf, id, 0); err != nil || out != 7 {
			t.Fatalf("the fork's result = %d, %v; want 7", out, err)
		}
		info, err := env.Engine.Get(t.Context(), id)
		if err != nil || info.Meta["origin"] != "forker" || info.Meta["id"] != "copy" {
			t.Fatalf("Get(%q).Meta = %v, %v; want what InjectRun made from Fork's context", id, info.Meta, err)
		}
	})
}
