package durabletest

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// CrashEveryStep runs workflow wf with input in once without a crash, to
// count the journal's commits, and then once per commit and side of it:
// the engine crashes right before commit k (it never lands) or right
// after it (it landed, and the engine never learns it did), and a new
// engine on the same journal resumes the run. Every variant must end
// with the result of the run without a crash (the same value, or an error
// with the same message), and every step attempt (a step's position and
// attempt number, in the run and its children) must have executed once,
// or twice when the crash interrupted it: a step runs again after a crash
// only if its result was not committed. Each failing variant is a test
// error that names the commit and the side.
//
// Retry jitter is the same in every variant (Config.RetrySeed, from
// [Seed] if cfg leaves it 0; printed when the test fails).
//
// cfg is the engines' configuration (nil: the defaults); wf is added to
// its Workflows if it is not there; its Observer, if any, still receives
// every event. A commit is any write of the journal: the run's creation,
// a step's result, a retry, a timer, a message, a child's start, the end.
//
// Given a *testing.T, each variant runs in its own testing/synctest
// bubble, so a workflow that sleeps for days costs nothing; call
// CrashEveryStep outside a bubble then. Step functions must return when
// their context is canceled (a crash cancels it).
func CrashEveryStep[I, O any](t testing.TB, cfg *durable.Config, wf *durable.Workflow[I, O], in I) {
	t.Helper()
	var c durable.Config
	if cfg != nil {
		c = *cfg
	}
	if c.RetrySeed == 0 {
		c.RetrySeed = Seed(t) // every variant backs off the same
	}
	cfg = &c
	ref := crashVariant(t, cfg, wf, in, -1, false)
	if ref.err != nil && ref.setupErr {
		t.Fatalf("durabletest.CrashEveryStep: the run without a crash: %v", ref.err)
		return
	}
	defer t.Logf("durabletest.CrashEveryStep: %s: %d commits, %d crash variants", wf.Name(), ref.commits, 2*ref.commits)
	for k := range ref.commits {
		for _, after := range []bool{false, true} {
			v := crashVariant(t, cfg, wf, in, k, after)
			where := fmt.Sprintf("crash %s commit %d of %d", map[bool]string{false: "before", true: "after"}[after], k+1, ref.commits)
			if v.setupErr {
				t.Errorf("durabletest.CrashEveryStep: %s: %v", where, v.err)
				continue
			}
			if !v.crashed {
				t.Logf("durabletest.CrashEveryStep: %s: the run made fewer commits this time; no crash", where)
			}
			if !reflect.DeepEqual(v.out, ref.out) || errText(v.err) != errText(ref.err) {
				t.Errorf("durabletest.CrashEveryStep: %s: the run ended with %v, %v; without a crash it ended with %v, %v",
					where, v.out, errText(v.err), ref.out, errText(ref.err))
			}
			for key, n := range v.attempts {
				if _, ok := ref.attempts[key]; !ok {
					t.Errorf("durabletest.CrashEveryStep: %s: step attempt %s ran, and not without a crash", where, key)
				} else if n > 2 {
					t.Errorf("durabletest.CrashEveryStep: %s: step attempt %s ran %d times; at most twice (once more after the crash)", where, key, n)
				}
			}
			for key := range ref.attempts {
				if v.attempts[key] == 0 {
					t.Errorf("durabletest.CrashEveryStep: %s: step attempt %s never ran", where, key)
				}
			}
			if twice := v.twice(); twice != nil {
				t.Errorf("durabletest.CrashEveryStep: %s: step attempts %v ran twice; a crash explains it only for the attempts executing at the crash and the one whose result it lost (%d)", where, twice, v.twiceOK)
			}
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// variant is the outcome of one run of the workflow.
type variant[O any] struct {
	out      O
	err      error
	setupErr bool // err is a failure of the harness, not the run's error
	commits  int  // commits the run made (the reference run's count)
	crashed  bool
	attempts map[string]int // executions by "run@position#attempt"
	twiceOK  int            // attempts a crash may make run twice
}

// twice lists the attempts that ran twice, if more than the concurrent
// steps at the crash explain.
func (v *variant[O]) twice() []string {
	var out []string
	for k, n := range v.attempts {
		if n == 2 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	if len(out) <= v.twiceOK {
		return nil
	}
	return out
}

// crashVariant runs wf once, crashing at commit k (-1: never), before or
// after it, and resuming on a new engine.
func crashVariant[I, O any](t testing.TB, cfg *durable.Config, wf *durable.Workflow[I, O], in I, k int, after bool) variant[O] {
	var v variant[O]
	if tt, ok := t.(*testing.T); ok {
		// Virtual time: no timeout; a run that never ends is a deadlock
		// the bubble reports.
		synctest.Test(tt, func(*testing.T) { v = runVariant(context.Background(), cfg, wf, in, k, after) })
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		v = runVariant(ctx, cfg, wf, in, k, after)
	}
	return v
}

func runVariant[I, O any](ctx context.Context, cfg *durable.Config, wf *durable.Workflow[I, O], in I, k int, after bool) (v variant[O]) {
	var c durable.Config
	if cfg != nil {
		c = *cfg
	}
	if !hasWorkflow(c.Workflows, wf) {
		c.Workflows = append(append([]durable.Definition(nil), c.Workflows...), wf)
	}
	obs := &countingObserver{Observer: c.Observer, attempts: map[string]int{}, running: map[string]bool{}}
	if obs.Observer == nil {
		obs.Observer = durable.BaseObserver{}
	}
	c.Observer = obs
	mem := journal.NewMemory()
	store := &crashStore{Store: mem, at: k, after: after, crash: make(chan struct{}), onCrash: obs.crash}
	const id = "crash-every-step"

	e, err := durable.New(store, &c)
	if err != nil {
		return variant[O]{err: err, setupErr: true}
	}
	done := make(chan struct{})
	var out O
	var runErr error
	go func() {
		defer close(done)
		out, runErr = durable.Run(ctx, e, wf, id, in)
	}()
	select {
	case <-done:
	case <-store.crash:
	}
	if store.crashed() {
		_ = e.Close()
		<-done
		e, err = durable.New(mem, &c)
		if err != nil {
			return variant[O]{err: err, setupErr: true}
		}
		out, runErr = durable.Run(ctx, e, wf, id, in)
		v.crashed = true
	}
	info, gerr := e.Get(ctx, id)
	if cerr := e.Close(); cerr != nil {
		return variant[O]{err: cerr, setupErr: true}
	}
	if gerr != nil || !info.Status.Terminal() {
		return variant[O]{err: fmt.Errorf("the run did not finish (status %v, %v; Run returned %v)", info.Status, gerr, runErr), setupErr: true}
	}
	v.out, v.err = out, runErr
	v.commits = store.count()
	v.attempts, v.twiceOK = obs.result()
	return v
}

func hasWorkflow(defs []durable.Definition, wf durable.Definition) bool {
	for _, d := range defs {
		if d.Name() == wf.Name() {
			return true
		}
	}
	return false
}

// crashStore fails every write from the at'th on (counting from 0), after
// letting the at'th through if after: a crash right before or right after
// that commit, as the engine sees it.
type crashStore struct {
	journal.Store
	at      int
	after   bool
	crash   chan struct{} // closed at the crash
	onCrash func()        // called at the crash

	mu   sync.Mutex
	n    int
	down bool
}

var errCrashed = fmt.Errorf("durabletest: crashed: %w", journal.ErrClosed)

// write decides the fate of the next write: apply it or not, and what to
// return.
func (s *crashStore) write(apply func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errCrashed
	}
	i := s.n
	s.n++
	if i != s.at {
		return apply()
	}
	if s.after {
		if err := apply(); err != nil {
			return err
		}
	}
	s.down = true
	s.onCrash()
	close(s.crash)
	return errCrashed
}

func (s *crashStore) crashed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (s *crashStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *crashStore) Commit(ctx context.Context, b *journal.Batch) error {
	return s.write(func() error { return s.Store.Commit(ctx, b) })
}

func (s *crashStore) CreateRun(ctx context.Context, r journal.Run) (got journal.Run, created bool, err error) {
	err = s.write(func() error {
		var err error
		got, created, err = s.Store.CreateRun(ctx, r)
		return err
	})
	return got, created, err
}

// countingObserver counts step attempts, and passes every event on to the
// Observer it embeds (the test's, or BaseObserver).
type countingObserver struct {
	durable.Observer

	mu       sync.Mutex
	attempts map[string]int
	running  map[string]bool // attempts executing now
	atCrash  int             // attempts executing at the crash
}

func attemptKey(ev durable.StepEvent) string {
	return fmt.Sprintf("%s@%d#%d(%s)", ev.RunID, ev.Position, ev.Attempt, ev.Step)
}

func (o *countingObserver) crash() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.atCrash = len(o.running)
}

func (o *countingObserver) result() (map[string]int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.attempts, o.atCrash + 1 // and the one whose commit the crash lost
}

func (o *countingObserver) StepStarted(ctx context.Context, ev durable.StepEvent) context.Context {
	o.mu.Lock()
	o.attempts[attemptKey(ev)]++
	o.running[attemptKey(ev)] = true
	o.mu.Unlock()
	return o.Observer.StepStarted(ctx, ev)
}

func (o *countingObserver) StepFinished(ctx context.Context, ev durable.StepEvent) {
	if !ev.Replayed {
		o.mu.Lock()
		delete(o.running, attemptKey(ev))
		o.mu.Unlock()
	}
	o.Observer.StepFinished(ctx, ev)
}
