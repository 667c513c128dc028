package durable

import (
	"context"
	"fmt"
	"time"
)

// Retention: the engine deletes finished runs (and the journals of epochs
// that ended with ContinueAsNew) once they are older than
// Config.Retention, checking every tenth of it (at least every minute, at
// most every hour). Each deletion is a small transaction of its own, so it
// never holds up step commits for long; bbolt reuses the freed pages, so a
// journal with steady traffic stops growing. `durable compact` shrinks the
// file itself. A run id can be started again once its run was deleted.

const purgeBatch = 100

func (e *Engine) retentionLoop() {
	if e.cfg.Retention < 0 {
		return
	}
	interval := min(max(e.cfg.Retention/10, time.Minute), time.Hour)
	for {
		c, stop := e.clock.Timer(interval)
		select {
		case <-c:
		case <-e.ctx.Done():
			stop()
			return
		}
		if _, err := e.Purge(e.ctx, e.clock.Now().Add(-e.cfg.Retention)); err != nil && e.ctx.Err() == nil {
			e.log.Warn("durable: retention: cannot delete finished runs", "err", err)
		}
	}
}

// Purge deletes the runs that finished before before, and the journals of
// epochs that ended before it, in transactions of 100 items, and returns
// how many items it deleted. The engine does this on its own for
// Config.Retention; call Purge to do it now.
func (e *Engine) Purge(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, err := e.store.Purge(ctx, before, purgeBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("durable: purge: %w", err)
		}
		if n < purgeBatch {
			return total, nil
		}
	}
}
