package durable_test

// Helpers shared by the behaviour tests of package durable.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/internal/enginetest"
	"github.com/durable-go/durable/journal"
)

// waitLimit bounds every wait of these tests: a condition that is not met
// by then is a failure (a hang), never a timing assertion.
const waitLimit = enginetest.WaitLimit

// opener opens a new engine on the test's store. Calling it again after
// Close of the previous engine simulates a restart: the memory variant
// shares one journal.Memory, the bolt variant reopens one file. Every engine
// is closed at the end of the test.
type opener func(t *testing.T, cfg *durable.Config) *durable.Engine

// forEachStore runs fn once with a memory store and once with a bbolt file,
// in parallel subtests.
func forEachStore(t *testing.T, fn func(t *testing.T, open opener)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		store := journal.NewMemory()
		fn(t, func(t *testing.T, cfg *durable.Config) *durable.Engine {
			t.Helper()
			e, err := durable.New(store, quiet(cfg))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { e.Close() })
			return e
		})
	})
	t.Run("bolt", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "journal.db")
		fn(t, func(t *testing.T, cfg *durable.Config) *durable.Engine {
			t.Helper()
			e, err := durable.Open(path, quiet(cfg))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { e.Close() })
			return e
		})
	})
	// Every behaviour again with a run cache of one: every run that waits
	// is evicted as soon as another waits, and replayed when woken. The
	// results must not change, and no recorded step may run again.
	t.Run("memory-cache1", func(t *testing.T) {
		t.Parallel()
		store := journal.NewMemory()
		fn(t, func(t *testing.T, cfg *durable.Config) *durable.Engine {
			t.Helper()
			c := quiet(cfg)
			if c.MaxCachedRuns == 0 {
				c.MaxCachedRuns = 1
			}
			e, err := durable.New(store, c)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { e.Close() })
			return e
		})
	})
}

func config(wfs ...durable.Definition) *durable.Config {
	return &durable.Config{Workflows: wfs}
}

// quietConfig is config with a logger that discards.
func quietConfig(wfs ...durable.Definition) *durable.Config {
	return &durable.Config{Workflows: wfs, Logger: discardLogger}
}

// discardLogger is a logger for engines whose logs a test does not read.
var discardLogger = slog.New(slog.DiscardHandler)

// The waiting helpers are internal/enginetest's, shared with the engine
// suite that runs on every store.
var (
	quiet      = enginetest.Quiet
	testCtx    = enginetest.Ctx
	waitFor    = enginetest.WaitFor
	waitStatus = enginetest.WaitStatus
	waitInfo   = enginetest.WaitInfo
	mustGet    = enginetest.MustGet
	mustClose  = enginetest.MustClose
)

// recv waits for a value on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return enginetest.Recv(t, ch, what)
}

// signal sends on ch without blocking: ch is buffered for the signals a
// test expects, extra ones are dropped.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// blockUntilDone blocks a step until its context ends and returns the
// context's error.
func blockUntilDone(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// tally counts events by name (executions of a step, reports of a
// branch). It is safe for concurrent use.
type tally struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *tally) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[name]++
}

func (c *tally) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name]
}

func (c *tally) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

// lineLog is an ordered log of formatted lines; safe for concurrent use.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *lineLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// valueLog collects values the workflow code reports on every execution
// (live and replayed). It is safe for concurrent use.
type valueLog[T any] struct {
	mu sync.Mutex
	v  []T
}

func (l *valueLog[T]) add(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.v = append(l.v, v)
}

func (l *valueLog[T]) all() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.v)
}

// raiseMax raises m to v if v is larger.
func raiseMax(m *atomic.Int64, v int64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

// storeEnv is an engine on a memory journal (a durabletest.Env) or on a bbolt
// file, for one test inside a synctest bubble. E changes on restart.
type storeEnv struct {
	t    *testing.T
	cfg  *durable.Config
	dt   *durabletest.Env // the memory variant
	bolt *journal.Bolt    // the bbolt variant
	E    *durable.Engine
}

func memoryEnv(t *testing.T, cfg *durable.Config) *storeEnv {
	t.Helper()
	c := quiet(cfg)
	dt := durabletest.New(t, c)
	return &storeEnv{t: t, cfg: c, dt: dt, E: dt.Engine}
}

func boltEnv(t *testing.T, cfg *durable.Config) *storeEnv {
	t.Helper()
	s, err := journal.OpenBolt(filepath.Join(t.TempDir(), "journal.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // after the engine's Close (cleanups run last first)
	env := &storeEnv{t: t, cfg: quiet(cfg), bolt: s}
	env.E = newEngine(t, s, env.cfg)
	return env
}

// newEngine returns an engine on store, closed when the test ends.
func newEngine(t *testing.T, store journal.Store, cfg *durable.Config) *durable.Engine {
	t.Helper()
	e, err := durable.New(store, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// store is the env's journal.
func (env *storeEnv) store() journal.Store {
	if env.dt != nil {
		return env.dt.Store
	}
	return env.bolt
}

// restart closes the engine and opens a new one on the same journal with
// cfg (nil: the same config), like a crash and a resume.
func (env *storeEnv) restart(cfg *durable.Config) {
	env.t.Helper()
	if cfg != nil {
		env.cfg = quiet(cfg)
	}
	if env.dt != nil {
		env.dt.Config = env.cfg
		env.E = env.dt.Restart()
		return
	}
	if err := env.E.Close(); err != nil {
		env.t.Errorf("Close: %v", err)
	}
	env.E = newEngine(env.t, env.bolt, env.cfg)
}

// both runs fn in a synctest bubble on a memory journal and on a bbolt
// file, as parallel subtests.
func both(t *testing.T, cfg *durable.Config, fn func(t *testing.T, env *storeEnv)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) { fn(t, memoryEnv(t, cfg)) })
	})
	t.Run("bolt", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) { fn(t, boltEnv(t, cfg)) })
	})
}
