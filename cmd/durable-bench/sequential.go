package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/durable-go/durable"
)

// P1: one run of sequential steps on a bbolt journal, against raw bbolt
// doing one db.Update (one fsync) per put of the same bytes.

var seqWorkflow = durable.Define("bench-sequential", steps)

func runSequential(b *bench) (*result, error) {
	n := b.cfg.steps
	size := 0                 // of the engine's records, measured from its first journal
	txs := 0                  // bbolt write transactions of the last run
	var cpu, rawCPU []float64 // the process's CPU time per step (per commit), µs
	vals, err := b.measureAll("P1",
		measure{"P1 engine, steps/s", sideEngine, func() (float64, error) {
			path := b.path("p1")
			defer os.Remove(path)
			el, c, err := sequentialRun(b, path, n)
			if err != nil {
				return 0, err
			}
			cpu = append(cpu, c.Seconds()*1e6/float64(n))
			if size == 0 {
				_, mean, err := recordStats(path, "seq")
				if err != nil {
					return 0, fmt.Errorf("record size: %w", err)
				}
				size = int(math.Round(mean))
			}
			if txs, err = b.journalTxs(path); err != nil {
				return 0, err
			}
			return float64(n) / el.Seconds(), nil
		}},
		measure{"P1 raw bbolt Update, commits/s", sideBaseline, func() (float64, error) {
			rate, c, err := rawUpdate(b.path("p1-raw"), n, size)
			rawCPU = append(rawCPU, c.Seconds()*1e6/float64(n))
			return rate, err
		}},
	)
	if err != nil {
		return nil, err
	}
	ours, raw := vals[0], vals[1]

	o, r, q := median(ours), median(raw), pairedRatio(ours, raw)
	res := &result{rows: []row{{
		figure:   "P1",
		what:     fmt.Sprintf("sequential: 1 run x %s steps", group(int64(n))),
		measured: num(o) + " steps/s",
		baseline: num(r) + " commits/s (bbolt Update)",
		ratio:    fmtRatio(q),
		target:   ">= 0.90x",
		verdict:  atLeast(q, 0.9),
	}}}
	res.note("engine: %s steps/s (%s); %.3f ms per step", num(o), spread(ours), 1000/o)
	res.note("raw bbolt: db.Update per put of an 8-byte key and a %d-byte value (the engine's mean record value in this run) into a nested bucket, fsync on, hashmap freelist: %s commits/s (%s); %.3f ms per commit", size, num(r), spread(raw), 1000/r)
	res.note("CPU time of the process (every thread) per step: engine %.0f µs, raw bbolt %.0f µs per commit (medians); the rest of each step's time is waiting: for the disk, and for goroutines to be scheduled", median(cpu), median(rawCPU))
	res.note("the engine's time includes creating the run and recording its result: %s commits for %s steps, in %s bbolt transactions", group(int64(n+2)), group(int64(n)), group(int64(txs)))
	return res, nil
}

// sequentialRun opens a journal at path, runs one run of n steps in it and
// returns the time durable.Run took, and the process's CPU time in it.
func sequentialRun(b *bench, path string, n int) (el, cpu time.Duration, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), figureTimeout)
	defer cancel()
	e, err := durable.Open(path, b.engineConfig(seqWorkflow))
	if err != nil {
		return 0, 0, err
	}
	t0, c0 := time.Now(), cpuTime()
	_, err = durable.Run(ctx, e, seqWorkflow, "seq", n)
	el, cpu = time.Since(t0), cpuTime()-c0
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return el, cpu, err
}
