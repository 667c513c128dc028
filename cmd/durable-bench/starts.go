package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/durable-go/durable"
)

// P3: runs of one step, all started with durable.Start from a pool of
// goroutines, then their results collected: runs per second, from the
// first Start to the last result.

var startWorkflow = durable.Define("bench-start", steps)

func runStarts(b *bench) (*result, error) {
	n, workers := b.cfg.starts, b.cfg.startWorkers
	var perTx []float64 // commits per bbolt transaction, per repetition
	vals, err := b.measureAll("P3", measure{"P3 engine, runs/s", sideEngine, func() (float64, error) {
		path := b.path("p3")
		defer os.Remove(path)
		el, err := startRuns(b, path, n, workers)
		if err != nil {
			return 0, err
		}
		txs, err := b.journalTxs(path)
		if err != nil {
			return 0, err
		}
		perTx = append(perTx, float64(3*n)/float64(max(txs, 1)))
		return float64(n) / el.Seconds(), nil
	}})
	if err != nil {
		return nil, err
	}
	ours := vals[0]
	o := median(ours)
	res := &result{rows: []row{{
		figure:   "P3",
		what:     fmt.Sprintf("starts: %s runs of 1 step (Start, then Result)", group(int64(n))),
		measured: num(o) + " runs/s",
		target:   ">= 10,000 runs/s",
		verdict:  atLeast(o, 10_000),
	}}}
	res.note("engine: %s runs/s (%s), Start called from %d goroutines; the runs execute while others are being started", num(o), spread(ours), workers)
	res.note("a run of one step makes 3 commits (creation, the step, the result); at this rate %s commits/s, %.1f per bbolt transaction (median)", num(3*o), median(perTx))
	return res, nil
}

// startRuns opens a journal at path, starts n runs of one step from
// workers goroutines, waits for every result and returns the time taken.
func startRuns(b *bench, path string, n, workers int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), figureTimeout)
	defer cancel()
	e, err := durable.Open(path, b.engineConfig(startWorkflow))
	if err != nil {
		return 0, err
	}
	handles := make([]*durable.Handle[int], n)
	t0 := time.Now()
	err = pool(n, workers, func(i int) error {
		h, err := durable.Start(ctx, e, startWorkflow, runID(i), 1)
		handles[i] = h
		return err
	})
	for _, h := range handles {
		if err != nil {
			break
		}
		_, err = h.Result(ctx)
	}
	el := time.Since(t0)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return el, err
}
