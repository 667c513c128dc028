package durable

import (
	"container/list"
	"context"
	"sync"

	"github.com/durable-go/durable/retry"
)

// concLimit bounds the attempts of one limit key executing at once. Its
// bound is fixed, or adaptive (AIMD): halved by an attempt that failed
// with a retry.After hint, grown by one after enough successes. Waiters
// are served first come, first served; a waiter blocks only its own step
// goroutine, as a channel semaphore would.
type concLimit struct {
	mu       sync.Mutex
	bound    int // attempts allowed at once now
	max      int // the Limit's MaxConcurrent
	adaptive bool
	every    int       // successes per +1; 0: the current bound
	inUse    int       // slots taken
	waiters  list.List // of chan struct{}, closed when granted a slot
	gen      uint64    // bumped by each decrease
	wins     int       // successes since the last change of bound
	backoffs uint64    // decreases so far
}

func newConcLimit(l Limit) *concLimit {
	return &concLimit{bound: l.MaxConcurrent, max: l.MaxConcurrent, adaptive: l.Adaptive, every: l.IncreaseEvery}
}

// acquire waits for a slot or for ctx to end. It returns the bound's
// generation when the slot was granted, for release.
func (c *concLimit) acquire(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	if c.inUse < c.bound && c.waiters.Len() == 0 {
		c.inUse++
		gen := c.gen
		c.mu.Unlock()
		return gen, nil
	}
	ch := make(chan struct{})
	el := c.waiters.PushBack(ch)
	c.mu.Unlock()
	select {
	case <-ch:
		c.mu.Lock()
		gen := c.gen
		c.mu.Unlock()
		return gen, nil
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-ch: // granted while canceled: give the slot on
			c.inUse--
			c.grantLocked()
		default:
			c.waiters.Remove(el)
		}
		c.mu.Unlock()
		return 0, ctx.Err()
	}
}

// cancel gives back a slot whose attempt never ran.
func (c *concLimit) cancel() {
	c.mu.Lock()
	c.inUse--
	c.grantLocked()
	c.mu.Unlock()
}

// release gives back the slot of an attempt that ran and returned
// attemptErr, taken under generation gen.
func (c *concLimit) release(gen uint64, attemptErr error) {
	c.mu.Lock()
	c.inUse--
	if c.adaptive {
		if attemptErr == nil {
			c.wins++
			every := c.every
			if every == 0 {
				every = c.bound
			}
			if c.wins >= every && c.bound < c.max {
				c.bound++
				c.wins = 0
			}
		} else if _, ok := retry.RetryAfter(attemptErr); ok && gen == c.gen {
			c.bound = max(c.bound/2, 1)
			c.gen++
			c.wins = 0
			c.backoffs++
		}
	}
	c.grantLocked()
	c.mu.Unlock()
}

// grantLocked hands free slots to the oldest waiters.
func (c *concLimit) grantLocked() {
	for c.inUse < c.bound && c.waiters.Len() > 0 {
		ch := c.waiters.Remove(c.waiters.Front()).(chan struct{})
		c.inUse++
		close(ch)
	}
}

// stats returns the bound now, the slots taken and the decreases so far.
func (c *concLimit) stats() (bound, inUse int, backoffs uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bound, c.inUse, c.backoffs
}
