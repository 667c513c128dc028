package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
)

// P4: unfinished runs, each with recorded steps and waiting in
// durable.Receive, each with a message on another channel (so not idle:
// an idle run is not loaded at Open); the engine is closed, and the time is taken from
// durable.Open (which resumes the runs in the background) until every run
// has replayed to its Receive. Workflow code runs again on replay, so the
// workflow counts arrivals right before Receive. The baseline is raw bbolt
// reading every record of the same file: the floor under a recovery that
// must read them all.

// recoverProgress counts the runs that reached Receive in the current
// phase (creation, or one recovery).
var recoverProgress atomic.Pointer[progress]

var recoverWorkflow = durable.Define("bench-recover", func(ctx durable.Context, n int) (string, error) {
	if _, err := steps(ctx, n); err != nil {
		return "", err
	}
	recoverProgress.Load().add()
	return durable.Receive[string](ctx, "go")
})

func runRecovery(b *bench) (*result, error) {
	runs, n := b.cfg.recoverRuns, b.cfg.recoverSteps
	path := b.path("p4")
	defer os.Remove(path)
	b.logf("  P4 setup: %s runs x %d steps, waiting in Receive", group(int64(runs)), n)
	t0 := time.Now()
	if err := createWaitingRuns(b, path, runs, n); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	setup := time.Since(t0)

	var cpu []float64 // the process's CPU seconds during each recovery
	vals, err := b.measureAll("P4",
		measure{"P4 engine, seconds from Open to all runs replayed", sideEngine, func() (float64, error) {
			el, c, err := recoverRuns(b, path, runs)
			cpu = append(cpu, c.Seconds())
			return el.Seconds(), err
		}},
		measure{"P4 raw bbolt read of all records, seconds", sideBaseline, func() (float64, error) {
			got, el, err := rawRead(path)
			if err == nil && got < runs*n {
				err = fmt.Errorf("read %d records, want at least %d", got, runs*n)
			}
			return el.Seconds(), err
		}},
	)
	if err != nil {
		return nil, err
	}
	ours, raw := vals[0], vals[1]

	o, r := median(ours), median(raw)
	q := pairedRatio(raw, ours) // times: raw/ours is ours/raw in speed
	total := float64(runs * n)
	res := &result{rows: []row{
		{
			figure:   "P4",
			what:     fmt.Sprintf("recovery: %s runs x %d steps, Open to all replayed", group(int64(runs)), n),
			measured: fmt.Sprintf("%s s (%s runs/s)", num(o), num(float64(runs)/o)),
			baseline: fmt.Sprintf("%s s (bbolt read of all records)", num(r)),
			ratio:    fmtRatio(q),
			target:   ">= 5,000 runs/s (10,000 in < 2 s)",
			verdict:  atLeast(float64(runs)/o, 5_000),
		},
		{
			figure:   "P4",
			what:     "recovery: replayed steps/s",
			measured: num(total/o) + " steps/s",
			baseline: num(total/r) + " records/s",
			ratio:    fmtRatio(q),
			target:   ">= 1,000,000 steps/s",
			verdict:  atLeast(total/o, 1_000_000),
		},
	}}
	res.note("engine: %.3f s from durable.Open to the last run at its Receive (%s); Config.MaxCachedRuns default (4096): runs beyond it are evicted once they wait, and Config.RecoveryWorkers default (4 x GOMAXPROCS)", o, spread(ours))
	res.note("engine: the process used %.3f s of CPU time per recovery (median; %.0f%% of %d CPUs over the wall time), %s per replayed step",
		median(cpu), 100*median(cpu)/o/float64(runtime.GOMAXPROCS(0)), runtime.GOMAXPROCS(0), durationPer(median(cpu), total))
	res.note("raw bbolt: open read-only, one View over every record's key and value, close: %.3f s (%s); the ratio is the engine's speed / raw bbolt's", r, spread(raw))
	res.note("setup (not timed): %s runs started at once, each %d steps then Receive, took %.1f s; journal %s", group(int64(runs)), n, setup.Seconds(), mb(float64(fileSize(path))))
	return res, nil
}

// createWaitingRuns starts runs runs of recoverWorkflow in a new journal at
// path, waits until each waits in Receive, and closes the engine.
func createWaitingRuns(b *bench, path string, runs, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), figureTimeout)
	defer cancel()
	p := newProgress(runs)
	recoverProgress.Store(p)
	e, err := durable.Open(path, b.engineConfig(recoverWorkflow))
	if err != nil {
		return err
	}
	err = pool(runs, b.cfg.startWorkers, func(i int) error {
		_, err := durable.Start(ctx, e, recoverWorkflow, runID(i), n)
		return err
	})
	if err == nil {
		err = p.wait(figureTimeout)
	}
	if err == nil {
		// A run that waits for a message is idle, and an engine that
		// opens the journal does not load it until one comes. A message
		// on another channel makes each run one that must be loaded:
		// recovery then replays every run (to its Receive on "go").
		err = pool(runs, b.cfg.startWorkers, func(i int) error {
			return durable.Send(ctx, e, runID(i), "nudge", "")
		})
	}
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return err
}

// recoverRuns opens the journal at path and returns the time until runs
// runs have replayed to their Receive, and the process's CPU time in it.
func recoverRuns(b *bench, path string, runs int) (el, cpu time.Duration, err error) {
	p := newProgress(runs)
	recoverProgress.Store(p)
	t0, c0 := time.Now(), cpuTime()
	e, err := durable.Open(path, b.engineConfig(recoverWorkflow))
	if err != nil {
		return 0, 0, err
	}
	err = p.wait(figureTimeout)
	el, cpu = time.Since(t0), cpuTime()-c0
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return el, cpu, err
}

// durationPer formats seconds/n as a duration.
func durationPer(seconds, n float64) string {
	return time.Duration(seconds / n * float64(time.Second)).String()
}
