// Package enginetest is the engine's behaviour suite, run against any
// journal.Store: the root package runs it on journal.Memory and on a bbolt
// file, journal/postgres on PostgreSQL. It is to the engine what
// journaltest is to a store: a new store is done when both pass.
//
// Each test uses the public API only (durable.Start, Send, Cancel, Get,
// List, ...), restarts engines on the same journal to check what survives
// a restart, and, when the store is a journal.Coordinator that can be
// opened twice, runs two engines on one journal. Durations are short
// (milliseconds) so the suite runs in real time on a networked store; in
// a testing/synctest bubble (Config.Synctest) they cost nothing. No test
// asserts on wall-clock time.
package enginetest

import (
	"sync"
	"testing"
	"testing/synctest"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// Config says how to open the journals the suite runs on.
type Config struct {
	// Journal makes a new, empty journal for test t (and removes it when
	// t ends). The suite calls it from inside the test's synctest bubble
	// when Synctest is set.
	Journal func(t *testing.T) Journal
	// Synctest runs each test in a testing/synctest bubble: for stores
	// whose every wait is on the bubble's clock (memory, bolt), not a
	// network server's.
	Synctest bool
	// Engine, if not nil, adjusts the Config of every engine the suite
	// opens (a run cache of one, say).
	Engine func(cfg *durable.Config)
}

// Journal opens one journal.
type Journal struct {
	// Open opens the journal for an engine. Each call after the first
	// is a restart: every engine on the store the previous call returned
	// has been closed, and Open may close that store (bolt must: its
	// file is locked) and open the journal again. A Memory returns itself.
	Open func() journal.Store
	// Share, if not nil, opens the journal once more while it is open,
	// for a second engine (a second process, say): its stores must
	// implement journal.Coordinator. nil for a store one engine owns
	// (bolt).
	Share func() journal.Store
}

// Run runs the suite with the journals c makes.
func Run(t *testing.T, c Config) {
	t.Helper()
	// Whether the store can be shared: asked once, of a journal made
	// outside any bubble and not used.
	shared := c.Journal(t).Share != nil
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.shared && !shared {
				t.Skip("the store is not shared by engines (not a journal.Coordinator)")
			}
			if c.Synctest {
				synctest.Test(t, func(t *testing.T) { tc.fn(newHarness(t, c)) })
			} else {
				tc.fn(newHarness(t, c))
			}
		})
	}
}

// tests lists the suite; each file adds its own with register.
var tests []suiteTest

type suiteTest struct {
	name   string
	fn     func(h *harness)
	shared bool // needs Journal.Share
}

func register(name string, fn func(h *harness)) {
	tests = append(tests, suiteTest{name: name, fn: fn})
}

// registerShared registers a test that needs two engines on one journal.
func registerShared(name string, fn func(h *harness)) {
	tests = append(tests, suiteTest{name: name, fn: fn, shared: true})
}

// harness is one test's journal and engines.
type harness struct {
	*testing.T
	c Config
	j Journal
}

func newHarness(t *testing.T, c Config) *harness {
	return &harness{T: t, c: c, j: c.Journal(t)}
}

// config returns the engine Config the suite uses for workflows wfs.
func (h *harness) config(wfs ...durable.Definition) *durable.Config {
	cfg := Quiet(&durable.Config{Workflows: wfs})
	if h.c.Engine != nil {
		h.c.Engine(cfg)
	}
	return cfg
}

// open opens an engine on the journal (again, after a restart) with
// workflows wfs. It is closed when the test ends.
func (h *harness) open(wfs ...durable.Definition) *durable.Engine {
	h.Helper()
	return h.openWith(h.config(wfs...))
}

func (h *harness) openWith(cfg *durable.Config) *durable.Engine {
	h.Helper()
	return h.newEngine(h.j.Open(), cfg)
}

func (h *harness) newEngine(s journal.Store, cfg *durable.Config) *durable.Engine {
	h.Helper()
	e, err := durable.New(s, cfg)
	if err != nil {
		h.Fatalf("durable.New: %v", err)
	}
	h.Cleanup(func() { e.Close() })
	return e
}

// restart closes e and opens an engine on the journal again, with the
// same workflows.
func (h *harness) restart(e *durable.Engine, wfs ...durable.Definition) *durable.Engine {
	h.Helper()
	MustClose(h.T, e)
	return h.open(wfs...)
}

// counter counts calls by key; safe for concurrent use.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) inc(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
	return c.n[key]
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// onceEach fails h if a key of c was counted other than once.
func (c *counter) onceEach(h *harness, keys ...string) {
	h.Helper()
	for _, k := range keys {
		if n := c.get(k); n != 1 {
			h.Errorf("%s executed %d times, want once", k, n)
		}
	}
}
