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
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/retry"
)

// awaitables converts futures for AwaitAll and AwaitAny.
func awaitables[T any](fs []*durable.Future[T]) []durable.Awaitable {
	out := make([]durable.Awaitable, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}

// stepKey identifies a step execution's position: "<run id>#<position>".
func stepKey(ctx context.Context) string {
	info, _ := durable.StepInfoFrom(ctx)
	return info.RunID + "#" + strconv.Itoa(info.Position)
}

// ---------------------------------------------------------------------------
// Fan-out and fan-in

const fanN = 200

// fanOutRestart runs a 200-way fan-out across a restart. open returns an
// engine on the same journal every time it is called. The even items finish
// in the first incarnation; the odd ones block until the engine closes. The
// second incarnation must not run the even items again, must run the odd
// ones again, and must return the results in call order.
func fanOutRestart(t *testing.T, cache int, open func(*durable.Config) *durable.Engine) {
	t.Helper()
	var runs [fanN]atomic.Int32
	var block atomic.Bool
	block.Store(true)
	release := make(chan struct{}) // never closed: the odd items wait until the engine closes
	slowStarted := make(chan int, fanN)
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
		if err := durable.AwaitAll(ctx, awaitables(fast)...); err != nil {
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
	cfg := &durable.Config{Workflows: []durable.Definition{wf}, MaxStepsPerRun: fanN, MaxCachedRuns: cache}

	e := open(cfg)
	if _, err := durable.Start(context.Background(), e, wf, "fan-1", fanN); err != nil {
		t.Fatal(err)
	}
	for range fanN / 2 {
		<-slowStarted
	}
	<-fastDone
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := range fanN {
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
	out, err := durable.Run(context.Background(), e, wf, "fan-1", fanN)
	if err != nil {
		t.Fatalf("Run after restart: %v", err)
	}
	sum, parts := 0, make([]string, fanN)
	for i := range fanN {
		sum += i * i
		parts[i] = strconv.Itoa(i * i)
	}
	if want := fmt.Sprintf("%d|%s", sum, strings.Join(parts, ",")); out != want {
		t.Errorf("result:\n got %.120s...\nwant %.120s...", out, want)
	}
	for i := range fanN {
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

func fanOutRestartMemory(t *testing.T, cache int) {
	store := journal.NewMemory()
	fanOutRestart(t, cache, func(cfg *durable.Config) *durable.Engine {
		e, err := durable.New(store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}

func TestFanOutRestartMemory(t *testing.T) {
	t.Parallel()
	fanOutRestartMemory(t, 0)
}

func TestFanOutRestartBolt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fanout.journal")
	fanOutRestart(t, 0, func(cfg *durable.Config) *durable.Engine {
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
							raiseMax(&peak, cur.Add(1))
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
				sum, err := durable.Run(t.Context(), env.Engine, wf, "naps", fanN)
				elapsed := time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				if want := fanN * (fanN - 1) / 2; sum != want {
					t.Errorf("sum = %d, want %d", sum, want)
				}
				t.Logf("200 one-second steps, %d at a time: %v virtual, peak concurrency %d", tc.perRun, elapsed, peak.Load())
				if elapsed != tc.want {
					t.Errorf("elapsed %v (virtual), want %v", elapsed, tc.want)
				}
				if tc.perRun >= fanN && elapsed >= 2*time.Second {
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
				raiseMax(&peak, cur.Add(1))
				raiseMax(&peakG, int64(runtime.NumGoroutine()))
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
					raiseMax(&peak, cur.Add(1))
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

// TestFutureEvictionCacheOfOne runs the scenarios above with
// Config.MaxCachedRuns 1: they must give the same results, and no recorded
// step may run again.
func TestFutureEvictionCacheOfOne(t *testing.T) {
	t.Parallel()
	for name, scenario := range map[string]func(*testing.T, int){
		"FanOutRestart":         fanOutRestartMemory,
		"SelectRestart":         selectRestart,
		"SelectReceiveOnce":     selectReceiveOnce,
		"ChildEngineClosed":     childEngineClosed,
		"ChildLinks":            childLinks,
		"ChildCancel":           childCancel,
		"SagaFailurePoints":     sagaMatrix,
		"SagaRestartCompensate": sagaRestart,
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
			got, n := mix(t, runs, cache)
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

func mix(t *testing.T, runs, cache int) (map[string]string, int) {
	results := map[string]string{}
	var entries atomic.Int32
	synctest.Test(t, func(t *testing.T) {
		var steps, released tally
		count := func(ctx context.Context) { steps.add(stepKey(ctx)) }
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
			if err := durable.AwaitAll(ctx, awaitables(fs)...); err != nil {
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
				released.add(info.RunID)
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

func TestFuturesResultsInCallOrder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		var mu sync.Mutex
		var finished []int
		wf := durable.Define("fan", func(ctx durable.Context, n int) ([]int, error) {
			// Item i waits for item i+1: they finish in reverse call order.
			done := make([]chan struct{}, n+1)
			for i := range done {
				done[i] = make(chan struct{})
			}
			close(done[n])
			futs := make([]*durable.Future[int], n)
			for i := range n {
				futs[i] = durable.Go(ctx, fmt.Sprintf("item-%d", i), func(sctx context.Context) (int, error) {
					select {
					case <-done[i+1]:
					case <-sctx.Done():
						return 0, sctx.Err()
					}
					mu.Lock()
					finished = append(finished, i)
					mu.Unlock()
					close(done[i])
					return i * i, nil
				})
			}
			out := make([]int, n)
			for i, f := range futs {
				v, err := f.Get(ctx)
				if err != nil {
					return nil, err
				}
				out[i] = v
			}
			return out, nil
		})
		e := open(t, config(wf))
		got, err := durable.Run(ctx, e, wf, "fan-1", 8)
		if want := []int{0, 1, 4, 9, 16, 25, 36, 49}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("Run = %v, %v; want %v", got, err, want)
		}
		if want := []int{7, 6, 5, 4, 3, 2, 1, 0}; !slices.Equal(finished, want) {
			t.Errorf("items finished in order %v; the test wants %v", finished, want)
		}
	})
}

func TestFuturesRestartMidFanOut(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		ctx := testCtx(t)
		const n, half = 20, 10
		var execs [n]atomic.Int32
		var blocked atomic.Int32
		var first atomic.Bool
		first.Store(true)
		reached := make(chan struct{})
		var reachedOnce sync.Once
		wf := durable.Define("fan-restart", func(ctx durable.Context, in int) ([]int, error) {
			futs := make([]*durable.Future[int], n)
			for i := range n {
				futs[i] = durable.Go(ctx, fmt.Sprintf("item-%02d", i), func(sctx context.Context) (int, error) {
					execs[i].Add(1)
					if i >= half && first.Load() {
						blocked.Add(1)
						return 0, blockUntilDone(sctx)
					}
					return i*i + in, nil
				})
			}
			out := make([]int, n)
			for i, f := range futs {
				v, err := f.Get(ctx)
				if err != nil {
					return nil, err
				}
				out[i] = v
				if i == half-1 {
					reachedOnce.Do(func() { close(reached) }) // test hook, not durable
				}
			}
			return out, nil
		})
		cfg := config(wf)
		e1 := open(t, cfg)
		if _, err := durable.Start(ctx, e1, wf, "fr-1", 1000); err != nil {
			t.Fatal(err)
		}
		recv(t, reached, "the first half of the futures to be recorded")
		waitFor(t, "the second half to be executing", func() bool { return blocked.Load() == n-half })
		mustClose(t, e1)
		first.Store(false)

		e2 := open(t, cfg)
		got, err := durable.Run(ctx, e2, wf, "fr-1", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if got[i] != i*i+1000 {
				t.Errorf("result[%d] = %d, want %d", i, got[i], i*i+1000)
			}
			want := int32(1)
			if i >= half {
				want = 2
			}
			if c := execs[i].Load(); c != want {
				t.Errorf("item %d executed %d times, want %d", i, c, want)
			}
		}
	})
}
