package durable_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

var loadFlag = flag.Bool("durable.load", false, "run TestTortureLoad at full size, 10,000 runs × 10 steps (or env DURABLE_LOAD=1)")

const loadSteps = 10

// TestTortureLoad runs many runs of loadSteps steps on a bbolt file,
// closes the engine when half the steps ran and opens it again: every run
// must complete with its result, no step may be recorded twice, a step may
// run again only if the Close interrupted it, and Close must leave no
// goroutine behind. It reports RSS and goroutines at the peak and after
// Close. The default is 1,000 runs; -durable.load (or DURABLE_LOAD=1)
// makes it 10,000:
//
//	go test -run=TestTortureLoad -durable.load -v .
//
// It does not run in parallel with other tests, so that the figures are
// its own.
func TestTortureLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	runs := 1000
	if *loadFlag || os.Getenv("DURABLE_LOAD") != "" {
		runs = 10000
	}
	baseline := goroutines()
	stepNames := make([]string, loadSteps)
	for i := range stepNames {
		stepNames[i] = fmt.Sprintf("s%d", i)
	}
	execs := make([]atomic.Int32, runs*loadSteps)
	var executed atomic.Int64
	wf := durable.Define("tt-load", func(ctx durable.Context, in int) (int, error) {
		sum := 0
		for i, name := range stepNames {
			v, err := durable.Step(ctx, name, func(context.Context) (int, error) {
				execs[in*loadSteps+i].Add(1)
				executed.Add(1)
				return in + i, nil
			})
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	})
	id := func(i int) string { return "load-" + strconv.Itoa(i) }

	var peak peakUsage
	stopSampling := peak.sample(20 * time.Millisecond)
	path := filepath.Join(t.TempDir(), "journal.db")
	ctx := context.Background()
	start := time.Now()
	e, err := durable.Open(path, quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	// Start the runs while a watcher closes the engine once half the
	// steps ran; runs not started by then start after the reopen.
	var atClose int64
	closed := make(chan error, 1)
	go func() {
		half := int64(runs * loadSteps / 2)
		for deadline := time.Now().Add(5 * time.Minute); executed.Load() < half && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		atClose = executed.Load()
		closed <- e.Close()
	}()
	var started atomic.Int32
	parallel(runs, 64, func(i int) {
		if _, err := durable.Start(ctx, e, wf, id(i), i); err == nil {
			started.Add(1)
		} else if !errors.Is(err, durable.ErrClosed) {
			t.Errorf("Start %d: %v", i, err)
		}
	})
	if err := <-closed; err != nil {
		t.Fatalf("Close in the middle: %v", err)
	}
	firstHalf := time.Since(start)
	leaked(t, baseline)
	t.Logf("Close in the middle after %v: %d runs started, %d of %d steps executed; no goroutine left", firstHalf.Round(time.Millisecond), started.Load(), atClose, runs*loadSteps)

	e, err = durable.Open(path, quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	var wrong atomic.Int32
	parallel(runs, 64, func(i int) {
		got, err := durable.Run(ctx, e, wf, id(i), i)
		if want := loadSteps*i + loadSteps*(loadSteps-1)/2; err != nil || got != want {
			if wrong.Add(1) <= 10 {
				t.Errorf("run %d: %d, %v; want %d", i, got, err, want)
			}
		}
	})
	total := time.Since(start)
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	stopSampling()
	after := leaked(t, baseline)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	again := 0
	for k := range execs {
		n := int(execs[k].Load())
		if n < 1 || n > 2 {
			t.Errorf("run %d step %d executed %d times; want once, or twice if the Close interrupted it", k/loadSteps, k%loadSteps, n)
		}
		again += n - 1
	}
	if again > runs { // each run has one step in flight at most
		t.Errorf("%d steps executed again after the Close; at most %d (one per run) can have been interrupted", again, runs)
	}

	s, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() || rep.Runs != runs || rep.Records != runs*loadSteps {
		t.Errorf("Verify: %d runs, %d records, problems %v, %v; want %d runs, %d records, none", rep.Runs, rep.Records, rep.Problems, err, runs, runs*loadSteps)
	}
	for i := range runs {
		recs, err := s.Records(ctx, id(i))
		if err != nil {
			t.Fatal(err)
		}
		ok := len(recs) == loadSteps
		for j, r := range recs {
			ok = ok && r.Pos == uint32(j) && r.Seq == 0
		}
		if !ok {
			t.Errorf("run %d: %d records, want one per step", i, len(recs))
			break
		}
	}
	fi, _ := os.Stat(path)
	t.Logf("%d runs × %d steps in %v (%d steps executed again after the Close); journal %d MiB", runs, loadSteps, total.Round(time.Millisecond), again, fi.Size()>>20)
	t.Logf("peak: RSS %d MiB, %d goroutines; after Close: RSS %d MiB, %d goroutines (as before the test), Go heap in use %d MiB",
		peak.rss.Load()>>20, peak.goroutines.Load(), rSS()>>20, after, ms.HeapInuse>>20)
}

// parallel calls fn(i) for i in [0, n) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// peakUsage tracks the highest RSS and goroutine count seen.
type peakUsage struct {
	rss, goroutines atomic.Int64
}

// sample samples every d until the returned function is called.
func (p *peakUsage) sample(d time.Duration) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			if r := rSS(); r > p.rss.Load() {
				p.rss.Store(r)
			}
			if g := int64(runtime.NumGoroutine()); g > p.goroutines.Load() {
				p.goroutines.Store(g)
			}
			select {
			case <-tick.C:
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}

// rSS returns the process's resident set size (VmRSS), 0 where
// /proc/self/status does not exist.
func rSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// goroutines returns the ids of the live goroutines, with their stacks.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		head, _, _ := bytes.Cut(g, []byte(" ["))
		if id, ok := bytes.CutPrefix(head, []byte("goroutine ")); ok {
			out[string(id)] = string(g)
		}
	}
	return out
}

// leaked waits (up to 10 s) until every goroutine of this module or of
// bbolt started since baseline has exited, fails the test if some are
// left, and returns the number of goroutines.
func leaked(t *testing.T, baseline map[string]string) int {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		left = left[:0]
		now := goroutines()
		for id, stack := range now {
			ours := strings.Contains(stack, "github.com/durable-go/durable") || strings.Contains(stack, "go.etcd.io/bbolt")
			if _, ok := baseline[id]; !ok && ours && !strings.Contains(stack, "goroutines") && !strings.Contains(stack, "(*peakUsage).sample") {
				left = append(left, stack)
			}
		}
		if len(left) == 0 {
			return len(now)
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Errorf("%d goroutines left after Close; the first:\n%s", len(left), left[0])
	return len(baseline) + len(left)
}
