package durable_test

// Concurrency inside workflows: futures and fan-out/fan-in (Go, AwaitAll),
// selects (AwaitAny over futures, timers and receive cases), child
// workflows and sagas, across restarts (a new engine on the same journal)
// and real crashes (SIGKILL of a child process), and with a run cache of
// one (every waiting run but one is evicted and replayed when woken).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// ccCounts counts events by key; safe for concurrent use.
type ccCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *ccCounts) inc(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[key]++
}

func (c *ccCounts) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func (c *ccCounts) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// ccLog is an ordered log of events; safe for concurrent use.
type ccLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *ccLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *ccLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// ccMax raises m to v if v is larger.
func ccMax(m *atomic.Int64, v int64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

// ccAwaitables converts futures for AwaitAll and AwaitAny.
func ccAwaitables[T any](fs []*durable.Future[T]) []durable.Awaitable {
	out := make([]durable.Awaitable, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}

// ccStepKey identifies a step execution's position: "<run id>#<position>".
func ccStepKey(ctx context.Context) string {
	info, _ := durable.StepInfoFrom(ctx)
	return info.RunID + "#" + strconv.Itoa(info.Position)
}

// ---------------------------------------------------------------------------
// Fan-out and fan-in

const ccFanN = 200

// ccFanOutRestart runs a 200-way fan-out across a restart. open returns an
// engine on the same journal every time it is called. The even items finish
// in the first incarnation; the odd ones block until the engine closes. The
// second incarnation must not run the even items again, must run the odd
// ones again, and must return the results in call order.
func ccFanOutRestart(t *testing.T, cache int, open func(*durable.Config) *durable.Engine) {
	t.Helper()
	var runs [ccFanN]atomic.Int32
	var block atomic.Bool
	block.Store(true)
	release := make(chan struct{}) // never closed: the odd items wait until the engine closes
	slowStarted := make(chan int, ccFanN)
	fastDone := make(chan struct{}, 1)

	wf := durable.Define("cc-fanout-200", func(ctx durable.Context, n int) (string, error) {
		fs := make([]*durable.Future[int], n)
		for i := range n {
			fs[i] = durable.Go(ctx, "item-"+strconv.Itoa(i), func(sctx context.Context) (int, error) {
				runs[i].Add(1)
				if i%2 == 1 && block.Load() {
					slowStarted <- i
					select {
					case <-release:
					case <-sctx.Done(): // the engine closes
						return 0, sctx.Err()
					}
				}
				return i * i, nil
			})
		}
		var fast []*durable.Future[int]
		for i := 0; i < n; i += 2 {
			fast = append(fast, fs[i])
		}
		if err := durable.AwaitAll(ctx, ccAwaitables(fast)...); err != nil {
			return "", err
		}
		select { // test hook: the even half is recorded
		case fastDone <- struct{}{}:
		default:
		}
		sum, parts := 0, make([]string, n)
		for i, f := range fs { // in call order, whatever the completion order
			v, err := f.Get(ctx)
			if err != nil {
				return "", err
			}
			sum += v
			parts[i] = strconv.Itoa(v)
		}
		return fmt.Sprintf("%d|%s", sum, strings.Join(parts, ",")), nil
	})
	cfg := &durable.Config{Workflows: []durable.Definition{wf}, MaxStepsPerRun: ccFanN, MaxCachedRuns: cache}

	e := open(cfg)
	if _, err := durable.Start(context.Background(), e, wf, "fan-1", ccFanN); err != nil {
		t.Fatal(err)
	}
	for range ccFanN / 2 {
		<-slowStarted
	}
	<-fastDone
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := range ccFanN {
		if n := runs[i].Load(); n != 1 {
			t.Fatalf("before the restart, item %d ran %d times, want 1", i, n)
		}
	}

	block.Store(false)
	e = open(cfg)
	defer func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	out, err := durable.Run(context.Background(), e, wf, "fan-1", ccFanN)
	if err != nil {
		t.Fatalf("Run after restart: %v", err)
	}
	sum, parts := 0, make([]string, ccFanN)
	for i := range ccFanN {
		sum += i * i
		parts[i] = strconv.Itoa(i * i)
	}
	if want := fmt.Sprintf("%d|%s", sum, strings.Join(parts, ",")); out != want {
		t.Errorf("result:\n got %.120s...\nwant %.120s...", out, want)
	}
	for i := range ccFanN {
		want := int32(1) // recorded before the restart: never run again
		if i%2 == 1 {
			want = 2 // interrupted by the restart: run again
		}
		if n := runs[i].Load(); n != want {
			t.Errorf("item %d ran %d times, want %d", i, n, want)
		}
	}
	info, err := e.Get(context.Background(), "fan-1")
	if err != nil || info.Status != durable.StatusCompleted {
		t.Errorf("Get(fan-1) = %v, %v; want completed", info.Status, err)
	}
}

func ccFanOutRestartMemory(t *testing.T, cache int) {
	store := journal.NewMemory()
	ccFanOutRestart(t, cache, func(cfg *durable.Config) *durable.Engine {
		e, err := durable.New(store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}

func TestFanOutRestartMemory(t *testing.T) {
	t.Parallel()
	ccFanOutRestartMemory(t, 0)
}

func TestFanOutRestartBolt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fanout.journal")
	ccFanOutRestart(t, 0, func(cfg *durable.Config) *durable.Engine {
		e, err := durable.Open(path, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}

// TestFanOutRunsConcurrentlyInVirtualTime: 200 steps that each take one
// second finish in one second with room for all of them, and in twenty
// with ten at a time.
func TestFanOutRunsConcurrentlyInVirtualTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		perRun int
		want   time.Duration
	}{{200, time.Second}, {10, 20 * time.Second}} {
		t.Run(fmt.Sprintf("MaxStepsPerRun=%d", tc.perRun), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var cur, peak atomic.Int64
				wf := durable.Define("cc-fanout-naps", func(ctx durable.Context, n int) (int, error) {
					fs := make([]*durable.Future[int], n)
					for i := range n {
						fs[i] = durable.Go(ctx, "nap", func(context.Context) (int, error) {
							ccMax(&peak, cur.Add(1))
							defer cur.Add(-1)
							time.Sleep(time.Second)
							return i, nil
						})
					}
					sum := 0
					for _, f := range fs {
						v, err := f.Get(ctx)
						if err != nil {
							return 0, err
						}
						sum += v
					}
					return sum, nil
				})
				env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxStepsPerRun: tc.perRun})
				start := time.Now()
				sum, err := durable.Run(t.Context(), env.Engine, wf, "naps", ccFanN)
				elapsed := time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				if want := ccFanN * (ccFanN - 1) / 2; sum != want {
					t.Errorf("sum = %d, want %d", sum, want)
				}
				t.Logf("200 one-second steps, %d at a time: %v virtual, peak concurrency %d", tc.perRun, elapsed, peak.Load())
				if elapsed != tc.want {
					t.Errorf("elapsed %v (virtual), want %v", elapsed, tc.want)
				}
				if tc.perRun >= ccFanN && elapsed >= 2*time.Second {
					t.Errorf("elapsed %v (virtual): the steps did not run concurrently", elapsed)
				}
				if p := peak.Load(); p != int64(tc.perRun) {
					t.Errorf("peak concurrency %d, want %d", p, tc.perRun)
				}
			})
		})
	}
}

// TestFanOutTenThousandStaysBounded: a 10,000-way fan-out executes at most
// MaxStepsPerRun steps at once and holds about that many goroutines, not
// one per future. Not parallel: it counts the process's goroutines.
func TestFanOutTenThousandStaysBounded(t *testing.T) {
	const n, perRun, slack = 10_000, 16, 50
	baseline := runtime.NumGoroutine()
	var cur, peak, peakG atomic.Int64
	release := make(chan struct{})
	started := make(chan struct{}, n)
	launched := make(chan struct{})
	var once sync.Once

	wf := durable.Define("cc-fanout-10k", func(ctx durable.Context, n int) (int, error) {
		fs := make([]*durable.Future[int], n)
		for i := range n {
			fs[i] = durable.Go(ctx, "item", func(context.Context) (int, error) {
				ccMax(&peak, cur.Add(1))
				ccMax(&peakG, int64(runtime.NumGoroutine()))
				started <- struct{}{}
				<-release
				cur.Add(-1)
				return i, nil
			})
		}
		once.Do(func() { close(launched) })
		sum := 0
		for i, f := range fs {
			v, err := f.Get(ctx)
			if err != nil {
				return 0, err
			}
			if v != i {
				return 0, fmt.Errorf("future %d returned %d", i, v)
			}
			sum += v
		}
		return sum, nil
	})
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{wf}, MaxStepsPerRun: perRun, MaxSteps: 2 * perRun})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h, err := durable.Start(context.Background(), e, wf, "fan-10k", n)
	if err != nil {
		t.Fatal(err)
	}
	<-launched // every future made
	for range perRun {
		<-started // and the queue's head is executing
	}
	during := runtime.NumGoroutine()
	t.Logf("goroutines: %d before the engine, %d with 10,000 futures pending and %d executing", baseline, during, perRun)
	if limit := baseline + perRun + slack; during >= limit {
		t.Errorf("%d goroutines during the fan-out, want < %d (baseline %d + %d + %d)", during, limit, baseline, perRun, slack)
	}
	close(release)
	sum, err := h.Result(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := n * (n - 1) / 2; sum != want {
		t.Errorf("sum = %d, want %d", sum, want)
	}
	t.Logf("peak: %d steps executing at once, %d goroutines", peak.Load(), peakG.Load())
	if p := peak.Load(); p != perRun {
		t.Errorf("peak concurrency %d, want %d (MaxStepsPerRun)", p, perRun)
	}
	if limit := int64(baseline + perRun + slack); peakG.Load() >= limit {
		t.Errorf("peak of %d goroutines during the fan-out, want < %d", peakG.Load(), limit)
	}
}

// TestFanOutMaxStepsBoundsAllRuns: MaxSteps bounds the steps executing at
// once over all runs of the engine.
func TestFanOutMaxStepsBoundsAllRuns(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const runs, perRun, maxSteps = 10, 20, 8
		var cur, peak atomic.Int64
		wf := durable.Define("cc-fanout-many", func(ctx durable.Context, k int) (int, error) {
			fs := make([]*durable.Future[int], perRun)
			for i := range fs {
				fs[i] = durable.Go(ctx, "nap", func(context.Context) (int, error) {
					ccMax(&peak, cur.Add(1))
					defer cur.Add(-1)
					time.Sleep(time.Second)
					return k, nil
				})
			}
			sum := 0
			for _, f := range fs {
				v, err := f.Get(ctx)
				if err != nil {
					return 0, err
				}
				sum += v
			}
			return sum, nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxSteps: maxSteps})
		start := time.Now()
		hs := make([]*durable.Handle[int], runs)
		for k := range runs {
			h, err := durable.Start(t.Context(), env.Engine, wf, fmt.Sprintf("many-%d", k), k)
			if err != nil {
				t.Fatal(err)
			}
			hs[k] = h
		}
		for k, h := range hs {
			if v, err := h.Result(t.Context()); err != nil || v != k*perRun {
				t.Errorf("run %d: %v, %v; want %d", k, v, err, k*perRun)
			}
		}
		elapsed := time.Since(start)
		t.Logf("%d one-second steps over %d runs with MaxSteps %d: %v virtual, peak %d", runs*perRun, runs, maxSteps, elapsed, peak.Load())
		if p := peak.Load(); p != maxSteps {
			t.Errorf("peak concurrency %d engine-wide, want %d (MaxSteps)", p, maxSteps)
		}
		if want := runs * perRun / maxSteps * time.Second; elapsed != want {
			t.Errorf("elapsed %v (virtual), want %v", elapsed, want)
		}
	})
}

// ---------------------------------------------------------------------------
// Select

// ccSelectWorkflow races a receive case, future B, future A and a timer.
// The first time, A finishes and B blocks until the engine stops. After a
// restart B finishes at once and a message waits on "sel", so a select
// evaluated again would pick the receive case (index 0); the journaled
// select must still say A (index 2). The step "report" records the winner.
func ccSelectWorkflow(aRan, bRan func(), bBlocks func() bool, report func(won int), reported chan<- int) *durable.Workflow[string, string] {
	return durable.Define("cc-select", func(ctx durable.Context, _ string) (string, error) {
		fa := durable.Go(ctx, "a", func(context.Context) (string, error) {
			aRan()
			return "A", nil
		})
		fb := durable.Go(ctx, "b", func(sctx context.Context) (string, error) {
			bRan()
			if bBlocks() {
				<-sctx.Done()
				return "", sctx.Err()
			}
			return "B", nil
		})
		sel := durable.OnReceive[string]("sel")
		won, err := durable.AwaitAny(ctx, sel, fb, fa, durable.NewTimer(ctx, time.Hour))
		if err != nil {
			return "", err
		}
		if _, err := durable.Step(ctx, "report", func(context.Context) (int, error) {
			report(won)
			return won, nil
		}); err != nil {
			return "", err
		}
		select { // test hook: the winner is recorded
		case reported <- won:
		default:
		}
		if _, err := durable.Receive[string](ctx, "continue"); err != nil {
			return "", err
		}
		b, err := fb.Get(ctx)
		if err != nil {
			return "", err
		}
		msg, err := durable.Receive[string](ctx, "sel") // the select did not take it
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("won=%d b=%s sel=%s", won, b, msg), nil
	})
}

func ccSelectRestart(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		var aRuns, bRuns atomic.Int32
		var phase atomic.Int32
		var reports ccCounts
		reported := make(chan int, 2)
		bStarted := make(chan struct{}, 2)
		wf := ccSelectWorkflow(
			func() { aRuns.Add(1) },
			func() { bRuns.Add(1); bStarted <- struct{}{} },
			func() bool { return phase.Load() == 1 },
			func(won int) { reports.inc(strconv.Itoa(won)) },
			reported)
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxCachedRuns: cache})
		ctx := t.Context()
		phase.Store(1)
		if _, err := durable.Start(ctx, env.Engine, wf, "sel-1", ""); err != nil {
			t.Fatal(err)
		}
		if won := <-reported; won != 2 {
			t.Fatalf("first select won by %d, want 2 (future A)", won)
		}
		<-bStarted // B is executing: the restart interrupts it
		if err := durable.Send(ctx, env.Engine, "sel-1", "sel", "hello"); err != nil {
			t.Fatal(err)
		}
		phase.Store(2)
		env.Restart()
		if err := durable.Send(ctx, env.Engine, "sel-1", "continue", "go"); err != nil {
			t.Fatal(err)
		}
		out, err := durable.Run(ctx, env.Engine, wf, "sel-1", "")
		if err != nil {
			t.Fatal(err)
		}
		if want := "won=2 b=B sel=hello"; out != want {
			t.Errorf("result %q, want %q", out, want)
		}
		if a, b := aRuns.Load(), bRuns.Load(); a != 1 || b != 2 {
			t.Errorf("A ran %d times (want 1), B ran %d times (want 2: interrupted, then again)", a, b)
		}
		if got := reports.snapshot(); len(got) != 1 || got["2"] != 1 {
			t.Errorf("report step ran %v, want once with winner 2", got)
		}
	})
}

func TestSelectWinnerIsJournaledAcrossRestart(t *testing.T) {
	t.Parallel()
	ccSelectRestart(t, 0)
}

// TestSelectCrashWinnerIsJournaled is the same with a real SIGKILL: the
// first child process sees A win and is killed; in the second, B would
// win a fresh select, but the run reports A.
func TestSelectCrashWinnerIsJournaled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "select.journal"), "LOG": filepath.Join(dir, "effects.log")}
	first := crashtest.Start(t, "TestSelectCrashChild", "first", env)
	first.WaitFor(t, "cc-select: ready", time.Minute)
	first.Kill(t)
	second := crashtest.Start(t, "TestSelectCrashChild", "second", env)
	line := second.WaitFor(t, "cc-select: result:", time.Minute)
	if err := second.Wait(t, time.Minute); err != nil {
		t.Fatalf("second child: %v", err)
	}
	if want := "cc-select: result: won=2 b=B sel=hello"; !strings.Contains(line, want) {
		t.Errorf("second child said %q, want %q", line, want)
	}
	counts, err := crashtest.Count(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"a ran": 1, "b ran": 2, "report 2": 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("effects %v, want %v", counts, want)
	}
}

func TestSelectCrashChild(t *testing.T) {
	role := crashtest.Role()
	if role == "" {
		t.Skip("run as a child process by TestSelectCrashWinnerIsJournaled")
	}
	lg, err := crashtest.OpenLog(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	effect := func(format string, args ...any) {
		if err := lg.Append(format, args...); err != nil {
			panic(err)
		}
	}
	reported := make(chan int, 1)
	bStarted := make(chan struct{}, 1)
	wf := ccSelectWorkflow(
		func() { effect("a ran") },
		func() { effect("b ran"); bStarted <- struct{}{} },
		func() bool { return role == "first" },
		func(won int) { effect("report %d", won) },
		reported)
	e, err := durable.Open(crashtest.Env("JOURNAL"), &durable.Config{Workflows: []durable.Definition{wf}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch role {
	case "first":
		if _, err := durable.Start(ctx, e, wf, "sel-crash", ""); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("cc-select: won %d\n", <-reported)
		<-bStarted // B is executing: the kill interrupts it
		if err := durable.Send(ctx, e, "sel-crash", "sel", "hello"); err != nil {
			t.Fatal(err)
		}
		fmt.Println("cc-select: ready")
		time.Sleep(time.Hour) // until SIGKILL
	case "second":
		if err := durable.Send(ctx, e, "sel-crash", "continue", "go"); err != nil {
			t.Fatal(err)
		}
		out, err := durable.Run(ctx, e, wf, "sel-crash", "")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("cc-select: result: %s\n", out)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSelectAwaitAllFirstErrorInArgumentOrder: AwaitAll waits for every
// item and returns the first error in argument order, not the first to
// happen.
func TestSelectAwaitAllFirstErrorInArgumentOrder(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		after := func(d time.Duration, err error) func(context.Context) (int, error) {
			return func(context.Context) (int, error) {
				time.Sleep(d)
				return int(d / time.Second), err
			}
		}
		once := durable.WithRetry(retry.Policy{MaxAttempts: 1})
		wf := durable.Define("cc-awaitall", func(ctx durable.Context, _ string) (string, error) {
			ok := durable.Go(ctx, "ok", after(3*time.Second, nil), once)
			late := durable.Go(ctx, "late-fail", after(2*time.Second, errors.New("first in argument order")), once)
			early := durable.Go(ctx, "early-fail", after(time.Second, errors.New("first to fail")), once)
			if err := durable.AwaitAll(ctx, ok); err != nil {
				return "", fmt.Errorf("AwaitAll of a success: %w", err)
			}
			return "", durable.AwaitAll(ctx, ok, late, early)
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}})
		start := time.Now()
		_, err := durable.Run(t.Context(), env.Engine, wf, "aa-1", "")
		if elapsed := time.Since(start); elapsed != 3*time.Second {
			t.Errorf("AwaitAll returned after %v (virtual), want 3s: it waits for every item", elapsed)
		}
		var se *durable.StepError
		if !errors.As(err, &se) || se.Step != "late-fail" {
			t.Fatalf("error %v (%T), want the StepError of late-fail", err, err)
		}
		if want := `durable: cc-awaitall(aa-1) → step "late-fail" failed after 1 attempt: first in argument order`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})
}

// ccSelectReceiveOnce: a winning receive case takes its message exactly
// once; the next select gets the next message, across a restart too, and a
// select with an empty inbox is won by its timer.
func ccSelectReceiveOnce(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("cc-select-receive", func(ctx durable.Context, _ string) (string, error) {
			inbox := durable.OnReceive[string]("inbox")
			var got []string
			for round := range 3 {
				won, err := durable.AwaitAny(ctx, inbox, durable.NewTimer(ctx, time.Minute))
				if err != nil {
					return "", err
				}
				if won == 0 {
					v, _ := inbox.Value()
					got = append(got, v)
				} else {
					got = append(got, "timeout")
				}
				if round == 0 {
					if _, err := durable.Receive[string](ctx, "next"); err != nil {
						return "", err
					}
				}
			}
			return strings.Join(got, ","), nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxCachedRuns: cache})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.Engine, wf, "recv-1", ""); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"m1", "m2"} {
			if err := durable.Send(ctx, env.Engine, "recv-1", "inbox", m); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // the first select took m1; the run waits on "next"
		msgs, err := env.Store.Messages(ctx, "recv-1", "inbox", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "m2") {
			t.Fatalf("inbox after the first select holds %d messages (%+v), want m2 only", len(msgs), msgs)
		}
		env.Restart()
		if err := durable.Send(ctx, env.Engine, "recv-1", "next", "go"); err != nil {
			t.Fatal(err)
		}
		out, err := durable.Run(ctx, env.Engine, wf, "recv-1", "")
		if err != nil {
			t.Fatal(err)
		}
		if want := "m1,m2,timeout"; out != want {
			t.Errorf("result %q, want %q", out, want)
		}
	})
}

func TestSelectReceiveCaseTakesMessageOnce(t *testing.T) {
	t.Parallel()
	ccSelectReceiveOnce(t, 0)
}

// ---------------------------------------------------------------------------
// Child workflows

// ccChildEngineClosed: the engine closes while a child runs; on reopen the
// child finishes once and the parent resumes with its result.
func ccChildEngineClosed(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		var childWork, childFinished, parentBefore, parentAfter atomic.Int32
		var block atomic.Bool
		block.Store(true)
		release := make(chan struct{}) // never closed: the first incarnation blocks
		started := make(chan struct{}, 1)
		child := durable.Define("cc-close-child", func(ctx durable.Context, n int) (int, error) {
			v, err := durable.Step(ctx, "work", func(sctx context.Context) (int, error) {
				childWork.Add(1)
				if block.Load() {
					started <- struct{}{}
					select {
					case <-release:
					case <-sctx.Done():
						return 0, sctx.Err()
					}
				}
				return 10 * n, nil
			})
			if err != nil {
				return 0, err
			}
			childFinished.Add(1)
			return v, nil
		})
		parent := durable.Define("cc-close-parent", func(ctx durable.Context, n int) (string, error) {
			if _, err := durable.Step(ctx, "before", func(context.Context) (int, error) { parentBefore.Add(1); return 0, nil }); err != nil {
				return "", err
			}
			v, err := durable.RunChild(ctx, child, "", n)
			if err != nil {
				return "", err
			}
			if _, err := durable.Step(ctx, "after", func(context.Context) (int, error) { parentAfter.Add(1); return 0, nil }); err != nil {
				return "", err
			}
			return fmt.Sprintf("child=%d", v), nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}, MaxCachedRuns: cache})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.Engine, parent, "pc-1", 4); err != nil {
			t.Fatal(err)
		}
		<-started
		block.Store(false) // the next incarnation of the step does not block
		env.Restart()
		out, err := durable.Run(ctx, env.Engine, parent, "pc-1", 4)
		if err != nil {
			t.Fatal(err)
		}
		if out != "child=40" {
			t.Errorf("result %q, want child=40", out)
		}
		if w, f, b, a := childWork.Load(), childFinished.Load(), parentBefore.Load(), parentAfter.Load(); w != 2 || f != 1 || b != 1 || a != 1 {
			t.Errorf("child step ran %d times (want 2), child finished %d times (want 1), parent steps before/after ran %d/%d (want 1/1)", w, f, b, a)
		}
		page, err := env.Engine.List(ctx, durable.ListOptions{Parent: "pc-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Runs) != 1 || page.Runs[0].ID != "pc-1/1" || page.Runs[0].Parent != "pc-1" || page.Runs[0].Status != durable.StatusCompleted {
			t.Errorf("children of pc-1: %+v; want one, pc-1/1, completed", page.Runs)
		}
	})
}

func TestChildSurvivesEngineClose(t *testing.T) {
	t.Parallel()
	ccChildEngineClosed(t, 0)
}

// ccChildLinks: StartChild futures, explicit and generated ids, and the
// parent links in List and Get.
func ccChildLinks(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		var squares ccCounts
		child := durable.Define("cc-links-child", func(ctx durable.Context, n int) (int, error) {
			if err := durable.Sleep(ctx, time.Duration(n)*time.Second); err != nil {
				return 0, err
			}
			return durable.Step(ctx, "square", func(sctx context.Context) (int, error) {
				squares.inc(ccStepKey(sctx))
				return n * n, nil
			})
		})
		parent := durable.Define("cc-links-parent", func(ctx durable.Context, _ string) (string, error) {
			if _, err := durable.Step(ctx, "prepare", func(context.Context) (int, error) { return 0, nil }); err != nil {
				return "", err
			}
			a := durable.StartChild(ctx, child, "ship-a", 3) // position 1
			b := durable.StartChild(ctx, child, "", 2)       // position 2: id "<parent>/2"
			vb, err := b.Get(ctx)
			if err != nil {
				return "", err
			}
			va, err := a.Get(ctx)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("a=%d b=%d", va, vb), nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}, MaxCachedRuns: cache})
		ctx := t.Context()
		out, err := durable.Run(ctx, env.Engine, parent, "links-1", "")
		if err != nil {
			t.Fatal(err)
		}
		if out != "a=9 b=4" {
			t.Errorf("result %q, want a=9 b=4", out)
		}
		page, err := env.Engine.List(ctx, durable.ListOptions{Parent: "links-1"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range page.Runs {
			ids = append(ids, r.ID)
			if r.Parent != "links-1" || r.Workflow != "cc-links-child" || r.Status != durable.StatusCompleted {
				t.Errorf("child %s: parent %q, workflow %q, status %v; want links-1, cc-links-child, completed", r.ID, r.Parent, r.Workflow, r.Status)
			}
		}
		if want := []string{"links-1/2", "ship-a"}; !slices.Equal(ids, want) {
			t.Errorf("children of links-1: %v, want %v", ids, want)
		}
		for id, want := range map[string]string{"links-1/2": "links-1", "ship-a": "links-1", "links-1": ""} {
			info, err := env.Engine.Get(ctx, id)
			if err != nil || info.Parent != want {
				t.Errorf("Get(%s).Parent = %q, %v; want %q", id, info.Parent, err, want)
			}
		}
		if page, err := env.Engine.List(ctx, durable.ListOptions{Parent: "ship-a"}); err != nil || len(page.Runs) != 0 {
			t.Errorf("children of ship-a: %+v, %v; want none", page.Runs, err)
		}
		for k, n := range squares.snapshot() {
			if n != 1 {
				t.Errorf("step %s ran %d times, want 1", k, n)
			}
		}
		if n := len(squares.snapshot()); n != 2 {
			t.Errorf("%d child steps ran, want 2", n)
		}
	})
}

func TestChildStartChildIDsAndParentLinks(t *testing.T) {
	t.Parallel()
	ccChildLinks(t, 0)
}

// TestChildFailureIsChildErrorWithPath: a child's failure reaches the
// parent as a *ChildError whose message reads like a stack.
func TestChildFailureIsChildErrorWithPath(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		child := durable.Define("cc-fail-child", func(ctx durable.Context, card string) (string, error) {
			return durable.Step(ctx, "charge", func(context.Context) (string, error) {
				return "", retry.Permanent(errors.New("card declined"))
			})
		})
		var live atomic.Value
		parent := durable.Define("cc-fail-parent", func(ctx durable.Context, card string) (string, error) {
			_, err := durable.RunChild(ctx, child, "", card)
			live.Store(fmt.Sprintf("%T", err))
			return "", err
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}})
		ctx := t.Context()
		_, err := durable.Run(ctx, env.Engine, parent, "pf-1", "4242")
		if got := live.Load(); got != "*durable.ChildError" {
			t.Errorf("the workflow saw a %v, want *durable.ChildError", got)
		}
		var ce *durable.ChildError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v (%T), want a *durable.ChildError", err, err)
		}
		if ce.ParentID != "pf-1" || ce.RunID != "pf-1/0" || ce.Workflow != "cc-fail-child" || ce.Parent != "cc-fail-parent" {
			t.Errorf("ChildError %+v", ce)
		}
		if want := `durable: cc-fail-parent(pf-1) → cc-fail-child(pf-1/0) → step "charge" failed after 1 attempt: card declined`; err.Error() != want {
			t.Errorf("error\n %q, want\n %q", err, want)
		}
		var se *durable.StepError
		if !errors.As(err, &se) || se.RunID != "pf-1/0" || se.Step != "charge" {
			t.Errorf("no StepError of pf-1/0 in %v", err)
		}
		if info, err := env.Engine.Get(ctx, "pf-1/0"); err != nil || info.Status != durable.StatusFailed || info.Parent != "pf-1" {
			t.Errorf("child: %v %q, %v; want failed, parent pf-1", info.Status, info.Parent, err)
		}
	})
}

// ccChildCancel: canceling a parent cancels its children, except detached
// ones, which complete.
func ccChildCancel(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		child := durable.Define("cc-cancel-child", func(ctx durable.Context, name string) (string, error) {
			msg, err := durable.Receive[string](ctx, "go")
			if err != nil {
				return "", err
			}
			return name + ":" + msg, nil
		})
		parent := durable.Define("cc-cancel-parent", func(ctx durable.Context, _ string) (string, error) {
			durable.StartChild(ctx, child, "att", "att")
			durable.StartChild(ctx, child, "det", "det", durable.Detached())
			_, err := durable.Receive[string](ctx, "never")
			return "", err
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}, MaxCachedRuns: cache})
		ctx := t.Context()
		hp, err := durable.Start(ctx, env.Engine, parent, "cp-1", "")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // both children are created and waiting
		if err := env.Engine.Cancel(ctx, "cp-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := hp.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Errorf("parent: %v, want ErrCanceled", err)
		}
		ha, err := durable.Start(ctx, env.Engine, child, "att", "att")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ha.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Errorf("attached child: %v, want ErrCanceled", err)
		}
		synctest.Wait()
		for id, want := range map[string]durable.Status{"cp-1": durable.StatusCanceled, "att": durable.StatusCanceled, "det": durable.StatusRunning} {
			if info, err := env.Engine.Get(ctx, id); err != nil || info.Status != want {
				t.Errorf("%s: %v, %v; want %v", id, info.Status, err, want)
			}
		}
		if info, _ := env.Engine.Get(ctx, "det"); info.CancelRequested {
			t.Errorf("the detached child was asked to cancel")
		}
		if err := durable.Send(ctx, env.Engine, "det", "go", "shipped"); err != nil {
			t.Fatal(err)
		}
		out, err := durable.Run(ctx, env.Engine, child, "det", "det")
		if err != nil || out != "det:shipped" {
			t.Errorf("detached child: %q, %v; want det:shipped", out, err)
		}
	})
}

func TestChildCancelReachesAttachedNotDetached(t *testing.T) {
	t.Parallel()
	ccChildCancel(t, 0)
}

// TestChildGetOfDetachedChildSeesCancel: Future.Get takes no journal
// position, so it waits for the detached child whatever happens to the
// parent (as its doc says); a parent that must stop waiting when it is
// canceled waits with AwaitAny, which journals the cancellation.
func TestChildGetOfDetachedChildSeesCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		child := durable.Define("cc-detached-get-child", func(ctx durable.Context, _ string) (string, error) {
			return durable.Receive[string](ctx, "go")
		})
		parent := durable.Define("cc-detached-get-parent", func(ctx durable.Context, _ string) (string, error) {
			f := durable.StartChild(ctx, child, "dg-child", "", durable.Detached())
			if _, err := durable.AwaitAny(ctx, f); err != nil {
				return "", err
			}
			return f.Get(ctx)
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child}})
		ctx := t.Context()
		h, err := durable.Start(ctx, env.Engine, parent, "dg-1", "")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := env.Engine.Cancel(ctx, "dg-1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if info, err := env.Engine.Get(ctx, "dg-1"); err != nil || info.Status != durable.StatusCanceled {
			t.Errorf("parent after Cancel: %v, %v; want canceled", info.Status, err)
		}
		if err := durable.Send(ctx, env.Engine, "dg-child", "go", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Errorf("parent: %v, want ErrCanceled", err)
		}
	})
}

// TestChildIDOwnedByAnotherRun: a child id that belongs to a top-level run
// or to another parent's child fails with ErrWorkflowMismatch and leaves
// that run alone.
func TestChildIDOwnedByAnotherRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var childRuns atomic.Int32
		other := durable.Define("cc-owned-other", func(ctx durable.Context, s string) (string, error) { return "other:" + s, nil })
		child := durable.Define("cc-owned-child", func(ctx durable.Context, s string) (string, error) {
			childRuns.Add(1)
			return "child:" + s, nil
		})
		parent := durable.Define("cc-owned-parent", func(ctx durable.Context, id string) (string, error) {
			out, err := durable.RunChild(ctx, child, id, "x")
			if err != nil {
				return fmt.Sprintf("mismatch=%t: %v", errors.Is(err, durable.ErrWorkflowMismatch), err), nil
			}
			return out, nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{parent, child, other}})
		ctx := t.Context()
		if _, err := durable.Run(ctx, env.Engine, other, "taken", "t"); err != nil {
			t.Fatal(err)
		}
		if _, err := durable.Run(ctx, env.Engine, child, "top", "t"); err != nil {
			t.Fatal(err)
		}
		if out, err := durable.Run(ctx, env.Engine, parent, "own-1", "shared"); err != nil || out != "child:x" {
			t.Fatalf("own-1: %q, %v; want child:x", out, err)
		}
		for _, tc := range []struct{ parent, id string }{
			{"own-2", "taken"},  // a top-level run of another workflow
			{"own-3", "top"},    // a top-level run of the same workflow
			{"own-4", "shared"}, // another parent's child
		} {
			out, err := durable.Run(ctx, env.Engine, parent, tc.parent, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out, "mismatch=true: ") {
				t.Errorf("child id %q in %s: %q, want an error matching ErrWorkflowMismatch", tc.id, tc.parent, out)
			}
		}
		if n := childRuns.Load(); n != 2 {
			t.Errorf("the child workflow ran %d times, want 2 (top and own-1's child)", n)
		}
		for id, want := range map[string]string{"taken": "", "top": "", "shared": "own-1"} {
			if info, err := env.Engine.Get(ctx, id); err != nil || info.Parent != want || info.Status != durable.StatusCompleted {
				t.Errorf("%s: parent %q, %v, %v; want parent %q, completed", id, info.Parent, info.Status, err, want)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Sagas

// ccSagaMatrix: a workflow of four steps, each followed by saga.Add(undo)
// and a one-second sleep, fails for good at step k. Exactly the undos of
// the steps before k run, once each, last first. The five cases (k = 4:
// no failure) run at once in one engine.
func ccSagaMatrix(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		logs := map[string]*ccLog{}
		for k := range 5 {
			logs[fmt.Sprintf("saga-%d", k)] = &ccLog{}
		}
		logOf := func(ctx context.Context) *ccLog {
			info, _ := durable.StepInfoFrom(ctx)
			return logs[info.RunID]
		}
		wf := durable.Define("cc-saga", func(ctx durable.Context, k int) (string, error) {
			saga := durable.NewSaga(ctx)
			for i := range 4 {
				_, err := durable.Step(ctx, fmt.Sprintf("step-%d", i), func(sctx context.Context) (int, error) {
					logOf(sctx).add("do %d", i)
					if i == k {
						return 0, retry.Permanent(fmt.Errorf("step %d failed", i))
					}
					return i, nil
				})
				if err != nil {
					return "", saga.Compensate(err)
				}
				saga.Add(fmt.Sprintf("undo-%d", i), func(sctx context.Context) error {
					logOf(sctx).add("undo %d", i)
					return nil
				})
				if err := durable.Sleep(ctx, time.Second); err != nil {
					return "", saga.Compensate(err)
				}
			}
			return "done", nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxCachedRuns: cache})
		ctx := t.Context()
		hs := make([]*durable.Handle[string], 5)
		for k := range hs {
			h, err := durable.Start(ctx, env.Engine, wf, fmt.Sprintf("saga-%d", k), k)
			if err != nil {
				t.Fatal(err)
			}
			hs[k] = h
		}
		for k, h := range hs {
			id := fmt.Sprintf("saga-%d", k)
			out, err := h.Result(ctx)
			var want []string
			for i := 0; i <= min(k, 3); i++ {
				want = append(want, fmt.Sprintf("do %d", i))
			}
			if k < 4 {
				for i := k - 1; i >= 0; i-- {
					want = append(want, fmt.Sprintf("undo %d", i))
				}
			}
			if k == 4 {
				if err != nil || out != "done" {
					t.Errorf("%s: %q, %v; want done", id, out, err)
				}
			} else if wantErr := fmt.Sprintf(`durable: cc-saga(%s) → step "step-%d" failed after 1 attempt: step %d failed`, id, k, k); err == nil || err.Error() != wantErr {
				t.Errorf("%s: error %v, want %q", id, err, wantErr)
			}
			if got := logs[id].get(); !slices.Equal(got, want) {
				t.Errorf("%s (failure at step %d): ran %q, want %q", id, k, got, want)
			}
		}
	})
}

func TestSagaCompensatesInReverseAtEachFailurePoint(t *testing.T) {
	t.Parallel()
	ccSagaMatrix(t, 0)
}

// ccSagaWorkflow fails at its fourth step; its second compensation
// (undo-1) blocks while blockUndo reports true, until the engine stops.
func ccSagaWorkflow(effect func(format string, args ...any), blockUndo func() bool, compensating chan<- struct{}) *durable.Workflow[string, string] {
	return durable.Define("cc-saga-restart", func(ctx durable.Context, _ string) (string, error) {
		saga := durable.NewSaga(ctx)
		for i := range 4 {
			_, err := durable.Step(ctx, fmt.Sprintf("step-%d", i), func(context.Context) (int, error) {
				effect("do %d", i)
				if i == 3 {
					return 0, retry.Permanent(fmt.Errorf("step %d failed", i))
				}
				return i, nil
			})
			if err != nil {
				return "", saga.Compensate(err)
			}
			saga.Add(fmt.Sprintf("undo-%d", i), func(sctx context.Context) error {
				effect("undo %d start", i)
				if i == 1 && blockUndo() {
					compensating <- struct{}{} // undo-2 is recorded: its step returned
					<-sctx.Done()
					return sctx.Err()
				}
				effect("undo %d done", i)
				return nil
			})
		}
		return "done", nil
	})
}

// ccSagaEffectsOK checks the effects of ccSagaWorkflow after a restart in
// the middle of its compensation: lines in order.
func ccSagaEffectsOK(t *testing.T, lines []string) {
	t.Helper()
	counts := map[string]int{}
	var done []string
	for _, l := range lines {
		counts[l]++
		if strings.HasSuffix(l, " done") {
			done = append(done, l)
		}
	}
	want := map[string]int{
		"do 0": 1, "do 1": 1, "do 2": 1, "do 3": 1,
		"undo 2 start": 1, "undo 2 done": 1, // recorded before the restart: not run again
		"undo 1 start": 2, "undo 1 done": 1, // interrupted, run again
		"undo 0 start": 1, "undo 0 done": 1,
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("effects %v\nwant %v", counts, want)
	}
	if wantDone := []string{"undo 2 done", "undo 1 done", "undo 0 done"}; !slices.Equal(done, wantDone) {
		t.Errorf("compensations finished in the order %q, want %q", done, wantDone)
	}
}

func ccSagaRestart(t *testing.T, cache int) {
	synctest.Test(t, func(t *testing.T) {
		var lg ccLog
		var block atomic.Bool
		block.Store(true)
		compensating := make(chan struct{}, 1)
		wf := ccSagaWorkflow(lg.add, block.Load, compensating)
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, MaxCachedRuns: cache})
		ctx := t.Context()
		if _, err := durable.Start(ctx, env.Engine, wf, "saga-r", ""); err != nil {
			t.Fatal(err)
		}
		<-compensating
		block.Store(false)
		env.Restart()
		_, err := durable.Run(ctx, env.Engine, wf, "saga-r", "")
		if want := `durable: cc-saga-restart(saga-r) → step "step-3" failed after 1 attempt: step 3 failed`; err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
		ccSagaEffectsOK(t, lg.get())
	})
}

func TestSagaRestartInTheMiddleOfCompensation(t *testing.T) {
	t.Parallel()
	ccSagaRestart(t, 0)
}

// TestSagaCrashInTheMiddleOfCompensation is the same with a real SIGKILL.
func TestSagaCrashInTheMiddleOfCompensation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "saga.journal"), "LOG": filepath.Join(dir, "effects.log")}
	first := crashtest.Start(t, "TestSagaCrashChild", "first", env)
	first.WaitFor(t, "cc-saga: compensating", time.Minute)
	first.Kill(t)
	second := crashtest.Start(t, "TestSagaCrashChild", "second", env)
	line := second.WaitFor(t, "cc-saga: result:", time.Minute)
	if err := second.Wait(t, time.Minute); err != nil {
		t.Fatalf("second child: %v", err)
	}
	if want := `cc-saga: result: durable: cc-saga-restart(saga-crash) → step "step-3" failed after 1 attempt: step 3 failed`; !strings.Contains(line, want) {
		t.Errorf("second child said %q, want %q", line, want)
	}
	b, err := os.ReadFile(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	ccSagaEffectsOK(t, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
}

func TestSagaCrashChild(t *testing.T) {
	role := crashtest.Role()
	if role == "" {
		t.Skip("run as a child process by TestSagaCrashInTheMiddleOfCompensation")
	}
	lg, err := crashtest.OpenLog(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	effect := func(format string, args ...any) {
		if err := lg.Append(format, args...); err != nil {
			panic(err)
		}
	}
	compensating := make(chan struct{}, 1)
	wf := ccSagaWorkflow(effect, func() bool { return role == "first" }, compensating)
	e, err := durable.Open(crashtest.Env("JOURNAL"), &durable.Config{Workflows: []durable.Definition{wf}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch role {
	case "first":
		if _, err := durable.Start(ctx, e, wf, "saga-crash", ""); err != nil {
			t.Fatal(err)
		}
		<-compensating
		fmt.Println("cc-saga: compensating")
		time.Sleep(time.Hour) // until SIGKILL
	case "second":
		_, err := durable.Run(ctx, e, wf, "saga-crash", "")
		fmt.Printf("cc-saga: result: %v\n", err)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSagaCompensatesOnCancel: a workflow that compensates on ErrCanceled
// runs its undos (on a context cancellation does not reach) and ends
// canceled.
func TestSagaCompensatesOnCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var lg ccLog
		wf := durable.Define("cc-saga-cancel", func(ctx durable.Context, _ string) (string, error) {
			saga := durable.NewSaga(ctx)
			for i := range 2 {
				if _, err := durable.Step(ctx, fmt.Sprintf("step-%d", i), func(context.Context) (int, error) {
					lg.add("do %d", i)
					return i, nil
				}); err != nil {
					return "", saga.Compensate(err)
				}
				saga.Add(fmt.Sprintf("undo-%d", i), func(sctx context.Context) error {
					lg.add("undo %d", i)
					return sctx.Err()
				})
			}
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return "", saga.Compensate(err)
			}
			return "done", nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}})
		ctx := t.Context()
		h, err := durable.Start(ctx, env.Engine, wf, "saga-c", "")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // sleeping
		if err := env.Engine.Cancel(ctx, "saga-c"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Result(ctx); !errors.Is(err, durable.ErrCanceled) {
			t.Errorf("result: %v, want ErrCanceled", err)
		}
		if info, err := env.Engine.Get(ctx, "saga-c"); err != nil || info.Status != durable.StatusCanceled {
			t.Errorf("status %v, %v; want canceled", info.Status, err)
		}
		if got, want := lg.get(), []string{"do 0", "do 1", "undo 1", "undo 0"}; !slices.Equal(got, want) {
			t.Errorf("ran %q, want %q", got, want)
		}
	})
}

// ---------------------------------------------------------------------------
// Eviction: a run cache of one

// TestFutureEvictionCacheOfOne runs the scenarios above with
// Config.MaxCachedRuns 1: they must give the same results, and no recorded
// step may run again.
func TestFutureEvictionCacheOfOne(t *testing.T) {
	t.Parallel()
	for name, scenario := range map[string]func(*testing.T, int){
		"FanOutRestart":         ccFanOutRestartMemory,
		"SelectRestart":         ccSelectRestart,
		"SelectReceiveOnce":     ccSelectReceiveOnce,
		"ChildEngineClosed":     ccChildEngineClosed,
		"ChildLinks":            ccChildLinks,
		"ChildCancel":           ccChildCancel,
		"SagaFailurePoints":     ccSagaMatrix,
		"SagaRestartCompensate": ccSagaRestart,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			scenario(t, 1)
		})
	}
}

// TestFutureEvictionMixedRunsMatchUncached runs six runs of a workflow that
// uses every feature (fan-out, select, child, saga) through a restart, with
// no cache limit and with a cache of one. The results must be the same,
// every step must run exactly once, and with a cache of one the runs must
// have been evicted and replayed.
func TestFutureEvictionMixedRunsMatchUncached(t *testing.T) {
	t.Parallel()
	const runs = 6
	want := map[string]string{}
	for k := range runs {
		id := fmt.Sprintf("mix-%d", k)
		if k%2 == 1 {
			want[id] = fmt.Sprintf(`error: durable: cc-mix(%s) → step "charge" failed after 1 attempt: card declined`, id)
		} else {
			want[id] = fmt.Sprintf("sum=%d sel=msg:hello child=%d", 190*k, 2*k)
		}
	}
	entries := map[int]int{}
	for _, cache := range []int{-1, 1} {
		t.Run(fmt.Sprintf("MaxCachedRuns=%d", cache), func(t *testing.T) {
			got, n := ccMix(t, runs, cache)
			entries[cache] = n
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("results\n got %v\nwant %v", got, want)
			}
		})
	}
	if t.Failed() {
		return
	}
	t.Logf("workflow function calls: %d with no cache limit, %d with a cache of one", entries[-1], entries[1])
	if want := 3 * runs; entries[-1] != want { // parents: start and restart; children: once
		t.Errorf("%d workflow function calls with no cache limit, want %d", entries[-1], want)
	}
	if entries[1] <= entries[-1] {
		t.Errorf("%d workflow function calls with a cache of one: no run was evicted and replayed", entries[1])
	}
}

func ccMix(t *testing.T, runs, cache int) (map[string]string, int) {
	results := map[string]string{}
	var entries atomic.Int32
	synctest.Test(t, func(t *testing.T) {
		var steps, released ccCounts
		count := func(ctx context.Context) { steps.inc(ccStepKey(ctx)) }
		child := durable.Define("cc-mix-child", func(ctx durable.Context, n int) (int, error) {
			entries.Add(1)
			if err := durable.Sleep(ctx, 30*time.Second); err != nil {
				return 0, err
			}
			return durable.Step(ctx, "double", func(sctx context.Context) (int, error) {
				count(sctx)
				return 2 * n, nil
			})
		})
		mix := durable.Define("cc-mix", func(ctx durable.Context, k int) (string, error) {
			entries.Add(1)
			fs := make([]*durable.Future[int], 20)
			for i := range fs {
				fs[i] = durable.Go(ctx, "item", func(sctx context.Context) (int, error) {
					count(sctx)
					time.Sleep(time.Duration(i%3+1) * time.Second)
					return i * k, nil
				})
			}
			if err := durable.AwaitAll(ctx, ccAwaitables(fs)...); err != nil {
				return "", err
			}
			sum := 0
			for _, f := range fs {
				v, err := f.Get(ctx)
				if err != nil {
					return "", err
				}
				sum += v
			}
			if err := durable.Sleep(ctx, time.Minute); err != nil {
				return "", err
			}
			sel := durable.OnReceive[string]("sel")
			slow := durable.Go(ctx, "slow", func(sctx context.Context) (string, error) {
				count(sctx)
				time.Sleep(10 * time.Second)
				return "slow", nil
			})
			won, err := durable.AwaitAny(ctx, sel, slow, durable.NewTimer(ctx, time.Hour))
			if err != nil {
				return "", err
			}
			winner := "timeout"
			switch won {
			case 0:
				v, _ := sel.Value()
				winner = "msg:" + v
			case 1:
				if winner, err = slow.Get(ctx); err != nil {
					return "", err
				}
			}
			c, err := durable.RunChild(ctx, child, "", k)
			if err != nil {
				return "", err
			}
			saga := durable.NewSaga(ctx)
			if _, err := durable.Step(ctx, "reserve", func(sctx context.Context) (int, error) {
				count(sctx)
				return k, nil
			}); err != nil {
				return "", err
			}
			saga.Add("release", func(sctx context.Context) error {
				count(sctx)
				info, _ := durable.StepInfoFrom(sctx)
				released.inc(info.RunID)
				return nil
			})
			if err := durable.Sleep(ctx, time.Second); err != nil {
				return "", saga.Compensate(err)
			}
			if _, err := durable.Step(ctx, "charge", func(sctx context.Context) (int, error) {
				count(sctx)
				if k%2 == 1 {
					return 0, retry.Permanent(errors.New("card declined"))
				}
				return k, nil
			}); err != nil {
				return "", saga.Compensate(err)
			}
			return fmt.Sprintf("sum=%d sel=%s child=%d", sum, winner, c), nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{mix, child}, MaxCachedRuns: cache})
		ctx := t.Context()
		for k := range runs {
			id := fmt.Sprintf("mix-%d", k)
			if _, err := durable.Start(ctx, env.Engine, mix, id, k); err != nil {
				t.Fatal(err)
			}
			if k%2 == 0 {
				if err := durable.Send(ctx, env.Engine, id, "sel", "hello"); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(30 * time.Second) // every run is in its one-minute sleep: no step in flight
		env.Restart()
		for k := range runs {
			id := fmt.Sprintf("mix-%d", k)
			out, err := durable.Run(ctx, env.Engine, mix, id, k)
			if err != nil {
				out = "error: " + err.Error()
			}
			results[id] = out
		}
		for key, n := range steps.snapshot() {
			if n != 1 {
				t.Errorf("step %s ran %d times, want 1", key, n)
			}
		}
		// Per run: 20 items, slow, reserve, charge, release if odd; per child: double.
		if n, want := len(steps.snapshot()), runs*(20+3+1)+runs/2; n != want {
			t.Errorf("%d step positions ran, want %d", n, want)
		}
		for k := range runs {
			id := fmt.Sprintf("mix-%d", k)
			if n, want := released.get(id), k%2; n != want {
				t.Errorf("%s: compensation ran %d times, want %d", id, n, want)
			}
		}
	})
	return results, int(entries.Load())
}
