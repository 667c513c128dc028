package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
)

// What the figures' workflows have in common, and how they drive them.

// figureTimeout bounds each wait of a figure, so a hang is an error.
const figureTimeout = 20 * time.Minute

// pool calls fn(i) for every i in [0, n) from workers goroutines and
// returns the first error; after an error no new call starts.
func pool(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n)) // start no more
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// progress counts runs that reached a point of their workflow (the code
// runs again on replay, so it counts replays too) and closes done when the
// count reaches target.
type progress struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func newProgress(target int) *progress {
	return &progress{target: int64(target), done: make(chan struct{})}
}

func (p *progress) add() {
	if p.n.Add(1) == p.target {
		close(p.done)
	}
}

// wait waits until the target is reached, or fails after timeout naming
// the count reached.
func (p *progress) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("only %d of %d runs reached their waiting point after %v", p.n.Load(), p.target, timeout)
	}
}

// item is the result of the figures' steps: a small struct.
type item struct {
	ID   int
	Name string
	OK   bool
}

func newItem(i int) item { return item{ID: i, Name: "item", OK: true} }

// steps runs n steps of ctx's workflow, each returning an item.
func steps(ctx durable.Context, n int) (int, error) {
	sum := 0
	for i := range n {
		it, err := durable.Step(ctx, "step", func(context.Context) (item, error) { return newItem(i), nil })
		if err != nil {
			return 0, err
		}
		sum += it.ID
	}
	return sum, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
