package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/durable-go/durable"
)

// P2: many runs of a few steps each, with a bounded number in flight (a
// pool of goroutines calling durable.Run), then with all of them in
// flight, against raw bbolt db.Batch from 64 goroutines writing the same
// number of values of the same size.

var concWorkflow = durable.Define("bench-concurrent", steps)

func runConcurrent(b *bench) (*result, error) {
	runs, n, inflight := b.cfg.runs, b.cfg.runSteps, b.cfg.inflight
	const writers = 64
	size := 0 // of the engine's records, measured from its first journal
	configs := []int{inflight}
	if runs != inflight {
		configs = append(configs, runs)
	}
	// Commits per bbolt transaction, per repetition: how well commits are
	// grouped. The last slot is raw bbolt's.
	perTx := make([][]float64, len(configs)+1)
	var ms []measure
	for i, fl := range configs {
		ms = append(ms, measure{fmt.Sprintf("P2 engine, %d in flight, steps/s", fl), sideEngine, func() (float64, error) {
			path := b.path("p2")
			defer os.Remove(path)
			el, err := concurrentRuns(b, path, runs, n, fl)
			if err != nil {
				return 0, err
			}
			if size == 0 {
				_, mean, err := recordStats(path, runID(0))
				if err != nil {
					return 0, fmt.Errorf("record size: %w", err)
				}
				size = int(math.Round(mean))
			}
			txs, err := b.journalTxs(path)
			if err != nil {
				return 0, err
			}
			perTx[i] = append(perTx[i], float64(runs*(n+2))/float64(max(txs, 1)))
			return float64(runs*n) / el.Seconds(), nil
		}})
	}
	ms = append(ms, measure{fmt.Sprintf("P2 raw bbolt Batch, %d goroutines, writes/s", writers), sideBaseline, func() (float64, error) {
		rate, txs, err := rawBatch(b.path("p2-raw"), runs, n, writers, size)
		perTx[len(configs)] = append(perTx[len(configs)], float64(runs*n)/float64(max(txs, 1)))
		return rate, err
	}})
	vals, err := b.measureAll("P2", ms...)
	if err != nil {
		return nil, err
	}
	ours, raw := vals[:len(configs)], vals[len(configs)]

	r := median(raw)
	res := &result{}
	for i, fl := range configs {
		o, q := median(ours[i]), pairedRatio(ours[i], raw)
		res.rows = append(res.rows, row{
			figure:   "P2",
			what:     fmt.Sprintf("concurrent: %s runs x %d steps, %s in flight", group(int64(runs)), n, group(int64(fl))),
			measured: fmt.Sprintf("%s steps/s (%s runs/s)", num(o), num(o/float64(n))),
			baseline: fmt.Sprintf("%s writes/s (bbolt Batch, %d goroutines)", num(r), writers),
			ratio:    fmtRatio(q),
			target:   ">= 0.75x",
			verdict:  atLeast(q, 0.75),
		})
		res.note("engine, %s in flight: %s steps/s (%s); %.1f commits per bbolt transaction (median)", group(int64(fl)), num(o), spread(ours[i]), median(perTx[i]))
	}
	res.note("raw bbolt: db.Batch with MaxBatchSize %d (default MaxBatchDelay) from %d goroutines, each writing one run's %d values in turn; %s writes of an 8-byte key and a %d-byte value: %s writes/s (%s); %.1f writes per transaction",
		writers, writers, n, group(int64(runs*n)), size, num(r), spread(raw), median(perTx[len(configs)]))
	res.note("each engine run also commits its creation and its result: %d commits per run of %d steps", n+2, n)
	return res, nil
}

func runID(i int) string { return "run-" + strconv.Itoa(i) }

// concurrentRuns opens a journal at path and runs runs runs of n steps
// with inflight of them at a time, and returns how long they took.
func concurrentRuns(b *bench, path string, runs, n, inflight int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), figureTimeout)
	defer cancel()
	e, err := durable.Open(path, b.engineConfig(concWorkflow))
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	err = pool(runs, inflight, func(i int) error {
		_, err := durable.Run(ctx, e, concWorkflow, runID(i), n)
		return err
	})
	el := time.Since(t0)
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return el, err
}
