// Package durabletest helps test workflows: an engine on an in-memory
// journal that is closed when the test ends, a crash-and-resume in one
// call, messages sent at a virtual time, and a clock tests can move.
//
// Run workflow tests inside a testing/synctest bubble and time is
// virtual: a workflow that sleeps for 30 days finishes in milliseconds,
// and the bubble checks that Close leaves no goroutine behind.
//
//	func TestReminder(t *testing.T) {
//		synctest.Test(t, func(t *testing.T) {
//			env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{reminder}})
//			env.SendAfter(72*time.Hour, "signup-1", "confirmed", true)
//			out, err := durable.Run(t.Context(), env.Engine, reminder, "signup-1", "bob@example.com")
//			...
//		})
//	}
//
// In the bubble, synctest.Wait returns once every run is blocked (waiting
// for a timer or a message): a test can then read [durable.Engine.Get]
// and see a settled state. [Env.Restart] simulates a crash and a resume;
// set Env.Config before it to resume with other code (a deploy). Give a
// restart downtime by closing env.Engine, sleeping, then calling Restart.
//
// For changes of workflow code: [Replay] replays the runs of a journal
// file (a production journal, or one written by `durable export`) against
// the current code and reports each run that would park, with the diff;
// [CrashEveryStep] crashes a workflow right before and right after each
// of its commits and checks that it ends the same and runs no step more
// than the crash explains. Engines made here draw retry jitter from a
// seed ([Seed]) printed when a test fails.
//
// A [Clock] (as durable.Config.Clock) moves only when the test moves it,
// backwards too; it works with or without a bubble. Use it to test what
// a clock jump does to timers; use the bubble for everything else.
package durabletest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// Env is an engine on an in-memory journal, for one test. Its fields may
// be read; Engine changes on Restart. An Env is used by one test
// goroutine (SendAfter's goroutines are its own).
type Env struct {
	t      testing.TB
	Store  *journal.Memory
	Config *durable.Config
	Engine *durable.Engine
	// Seed is the engines' Config.RetrySeed when Config leaves it 0: the
	// seed of retry jitter, printed when the test fails (see [Seed]).
	Seed uint64

	mu    sync.Mutex    // guards Engine against SendAfter's goroutines
	ended chan struct{} // closed when the test ends
}

// New returns an Env whose engine runs cfg (nil: defaults) on a new memory
// store. The engine is closed when the test ends, and the test fails if
// Close reports an error.
func New(t testing.TB, cfg *durable.Config) *Env {
	t.Helper()
	if cfg == nil {
		cfg = &durable.Config{}
	}
	env := &Env{t: t, Store: journal.NewMemory(), Config: cfg, Seed: Seed(t), ended: make(chan struct{})}
	env.Engine = env.open()
	t.Cleanup(func() {
		env.mu.Lock()
		defer env.mu.Unlock()
		close(env.ended) // pending SendAfters give up
		if err := env.Engine.Close(); err != nil {
			t.Errorf("durabletest: Close: %v", err)
		}
	})
	return env
}

func (env *Env) open() *durable.Engine {
	env.t.Helper()
	cfg := *env.Config
	if cfg.RetrySeed == 0 {
		cfg.RetrySeed = env.Seed
	}
	e, err := durable.New(env.Store, &cfg)
	if err != nil {
		env.t.Fatalf("durabletest: New: %v", err)
	}
	return e
}

// Restart simulates a crash and a resume: it closes the engine (running
// steps are interrupted and not recorded) and opens a new one on the same
// journal, which resumes every unfinished run. It returns the new engine,
// also in env.Engine. Handles from the old engine report ErrClosed; start
// the same id again to get a handle on the new one.
//
// To simulate a deploy of new code, set env.Config before Restart: the
// new engine uses it.
func (env *Env) Restart() *durable.Engine {
	env.t.Helper()
	env.mu.Lock()
	defer env.mu.Unlock()
	if err := env.Engine.Close(); err != nil {
		env.t.Errorf("durabletest: Close: %v", err)
	}
	env.Engine = env.open()
	return env.Engine
}

// SendAfter sends msg to run id on channel after d, from a goroutine, on
// whatever engine env has then (a Restart in progress finishes first). In
// a synctest bubble d is virtual time. A failed Send fails the test; so
// does one while the engine is closed outside Restart. A SendAfter still
// pending when the test ends sends nothing.
func (env *Env) SendAfter(d time.Duration, id, channel string, msg any) {
	go func() {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-env.ended:
			return
		}
		env.mu.Lock()
		defer env.mu.Unlock()
		select {
		case <-env.ended:
			return
		default:
		}
		if err := durable.Send(context.Background(), env.Engine, id, channel, msg); err != nil {
			env.t.Errorf("durabletest: send to %q on %q after %v: %v", id, channel, d, err)
		}
	}()
}

// SendAt is SendAfter until t.
func (env *Env) SendAt(t time.Time, id, channel string, msg any) {
	env.SendAfter(time.Until(t), id, channel, msg)
}
