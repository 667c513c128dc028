package postgres

import (
	"bytes"
	"sync"

	"github.com/durable-go/durable/journal"
)

// The run cache lets a group commit skip its first round trip. A store
// remembers the runs its own group transactions last read or wrote, each
// with the row's xmin (the id of the transaction that wrote that row
// version: any UPDATE, a claim's included, gives the row a new one). A
// group whose runs are all in the cache (or created by it) applies the
// batch rules to the cached rows and sends everything at once: one
// statement locks those rows and fails the transaction unless each one's
// xmin, owner and token are still the cached ones, then the writes, then
// the commit (see fastcommit.go). Records and messages the rules assume
// absent are inserted without ON CONFLICT, so a wrong guess fails the
// insert. When any assumption fails, nothing is written and the group is
// committed again the ordinary way (read and lock, then write), which
// refreshes the cache. The cache is a guess that is always checked, never
// a source of truth: another process may change any run at any time.

// maxCachedRuns bounds the cache; when full it is emptied.
const maxCachedRuns = 1 << 16

// cachedRun is a run's row as a group transaction of this store last saw it.
type cachedRun struct {
	run  journal.Run // owns its byte slices
	seq  uint64      // msg_seq
	xmin uint32
}

// runCache maps run ids to their cached rows. Safe for concurrent use.
type runCache struct {
	mu sync.Mutex
	m  map[string]*cachedRun
}

// get returns a copy of run id's cached row, if any.
func (c *runCache) get(id string) (cachedRun, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil {
		return cachedRun{}, false
	}
	return *e, true
}

// has reports whether run id is cached.
func (c *runCache) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id] != nil
}

// put caches r (copying its byte slices: the caller's may be reused) with
// its message sequence number and row xmin. Finished runs are not kept:
// nothing commits to them.
func (c *runCache) put(r *journal.Run, seq uint64, xmin uint32) {
	if r.Status.Terminal() {
		c.drop(r.ID)
		return
	}
	e := &cachedRun{run: *r, seq: seq, xmin: xmin}
	e.run.Input, e.run.Output, e.run.Err, e.run.Meta = bytes.Clone(r.Input), bytes.Clone(r.Output), bytes.Clone(r.Err), bytes.Clone(r.Meta)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedRuns {
		c.m = make(map[string]*cachedRun)
	}
	c.m[r.ID] = e
}

// drop forgets run id.
func (c *runCache) drop(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		delete(c.m, id)
	}
}
