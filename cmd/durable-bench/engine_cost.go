package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// P5: the engine's own cost per step, with no I/O: steps on the memory
// store, timed and counted (runtime.MemStats mallocs, every goroutine's)
// over N steps in runs of at most costRunSteps. The baseline is what a
// step must do at the least besides bookkeeping: msgpack-encode its result
// and decode it back.

var costWorkflow = durable.Define("bench-cost", steps)

// costRunSteps keeps each run's journal a realistic length (and under
// Config.MaxHistory).
const costRunSteps = 10_000

type cost struct {
	ns, cpuNs, allocs, bytes float64 // per step; cpuNs: the process's CPU time
}

func runEngineCost(b *bench) (*result, error) {
	n := b.cfg.costSteps
	var cpu, allocs, bytes, codecAllocs, codecBytes []float64
	vals, err := b.measureAll("P5",
		measure{"P5 engine, ns/step", sideEngine, func() (float64, error) {
			c, err := engineCost(b, n)
			cpu, allocs, bytes = append(cpu, c.cpuNs), append(allocs, c.allocs), append(bytes, c.bytes)
			return c.ns, err
		}},
		measure{"P5 msgpack encode+decode, ns", sideBaseline, func() (float64, error) {
			c, err := codecCost(n)
			codecAllocs, codecBytes = append(codecAllocs, c.allocs), append(codecBytes, c.bytes)
			return c.ns, err
		}},
	)
	if err != nil {
		return nil, err
	}
	ns, codec := vals[0], cost{ns: median(vals[1]), allocs: median(codecAllocs), bytes: median(codecBytes)}
	res := &result{rows: []row{
		{
			figure:   "P5",
			what:     "engine cost: ns per step (memory store)",
			measured: fmt.Sprintf("%.0f ns", median(ns)),
			baseline: fmt.Sprintf("%.0f ns (msgpack encode+decode)", codec.ns),
			ratio:    fmtRatio(pairedRatio(ns, vals[1])),
			target:   "<= 2,000 ns",
			verdict:  atMost(median(ns), 2000),
		},
		{
			figure:   "P5",
			what:     "engine cost: allocations per step",
			measured: fmt.Sprintf("%.1f allocs (%.0f B)", median(allocs), median(bytes)),
			baseline: fmt.Sprintf("%.1f allocs (%.0f B)", codec.allocs, codec.bytes),
			ratio:    fmtRatio(pairedRatio(allocs, codecAllocs)),
			target:   "<= 10 allocs",
			verdict:  atMost(median(allocs), 10),
		},
	}}
	res.note("engine: %s steps per rep on journal.NewMemory(), runs of up to %s steps, one at a time; ns/step %s; allocs/step %s", group(int64(n)), group(int64(costRunSteps)), spread(ns), spread(allocs))
	res.note("engine: the process's CPU time (user + system, every thread, the GC's included) per step: %.0f ns; other processes taking the CPUs stretch the wall time, not this", median(cpu))
	res.note("baseline: msgpack.Marshal and msgpack.Unmarshal of the step's result (struct{ID int; Name string; OK bool}), which every executed step needs; here ratios are engine / baseline")
	return res, nil
}

// engineCost runs n steps on a memory-store engine (after a warm-up run)
// and returns the cost per step.
func engineCost(b *bench, n int) (cost, error) {
	ctx, cancel := context.WithTimeout(context.Background(), figureTimeout)
	defer cancel()
	e, err := durable.New(journal.NewMemory(), b.engineConfig(costWorkflow))
	if err != nil {
		return cost{}, err
	}
	defer e.Close()
	if _, err := durable.Run(ctx, e, costWorkflow, "warm-up", 1000); err != nil {
		return cost{}, err
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0, cpu0 := time.Now(), cpuTime()
	for i, left := 0, n; left > 0; i++ {
		k := min(left, costRunSteps)
		if _, err := durable.Run(ctx, e, costWorkflow, runID(i), k); err != nil {
			return cost{}, err
		}
		left -= k
	}
	el, cpuEl := time.Since(t0), cpuTime()-cpu0
	runtime.ReadMemStats(&after)
	f := float64(n)
	return cost{
		ns:     float64(el.Nanoseconds()) / f,
		cpuNs:  float64(cpuEl.Nanoseconds()) / f,
		allocs: float64(after.Mallocs-before.Mallocs) / f,
		bytes:  float64(after.TotalAlloc-before.TotalAlloc) / f,
	}, nil
}

// codecCost is the cost of encoding a step's result and decoding it back.
func codecCost(n int) (cost, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	for i := range n {
		p, err := msgpack.Marshal(newItem(i))
		if err != nil {
			return cost{}, err
		}
		var it item
		if err := msgpack.Unmarshal(p, &it); err != nil {
			return cost{}, err
		}
	}
	el := time.Since(t0)
	runtime.ReadMemStats(&after)
	f := float64(n)
	return cost{
		ns:     float64(el.Nanoseconds()) / f,
		allocs: float64(after.Mallocs-before.Mallocs) / f,
		bytes:  float64(after.TotalAlloc-before.TotalAlloc) / f,
	}, nil
}
