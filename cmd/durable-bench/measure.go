package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
)

// The sides of a figure, as pprof labels ("side"): in a CPU profile,
// `go tool pprof -tagfocus side=engine` shows the engine's samples only.
const (
	sideEngine   = "engine"
	sideBaseline = "baseline"
)

// onSide runs fn with its CPU samples (and those of the goroutines it
// starts) labelled side.
func onSide(side string, fn func()) {
	pprof.Do(context.Background(), pprof.Labels("side", side), func(context.Context) { fn() })
}

// measure is one measurement that a figure repeats: the engine's, or its
// baseline's.
type measure struct {
	what string // for the progress lines
	side string // sideEngine or sideBaseline
	fn   func() (float64, error)
}

// measureAll runs ms one after the other, -reps times, and returns each
// one's values. The sides alternate, so a change in the machine's load
// (other processes share it) hits both alike. The whole is profiled as
// -cpuprofile and -memprofile ask.
func (b *bench) measureAll(fig string, ms ...measure) ([][]float64, error) {
	out := make([][]float64, len(ms))
	err := b.profiled(fig, func() error {
		for rep := range b.cfg.reps {
			for i, m := range ms {
				var v float64
				var err error
				onSide(m.side, func() { v, err = m.fn() })
				if err != nil {
					return fmt.Errorf("%s: %w", m.what, err)
				}
				b.logf("  %s, rep %d/%d: %s", m.what, rep+1, b.cfg.reps, num(v))
				out[i] = append(out[i], v)
			}
		}
		return nil
	})
	return out, err
}

// profiled runs fn under the CPU profiler if -cpuprofile is set, and
// writes a heap profile after it if -memprofile is set.
func (b *bench) profiled(fig string, fn func() error) error {
	if b.cfg.cpuProfile != "" {
		f, err := os.Create(profileName(b.cfg.cpuProfile, fig))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := fn(); err != nil {
		return err
	}
	if b.cfg.memProfile != "" {
		return writeHeapProfile(profileName(b.cfg.memProfile, fig))
	}
	return nil
}

func profileName(prefix, fig string) string { return prefix + "-" + fig + ".pprof" }

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// median returns the median of vs.
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// pairedRatio is the median of the per-repetition ratios ours[i]/base[i]:
// each repetition measures both sides back to back, so a load that comes
// and goes during the run moves both values of a pair alike.
func pairedRatio(ours, base []float64) float64 {
	rs := make([]float64, 0, len(ours))
	for i := range min(len(ours), len(base)) {
		if base[i] != 0 {
			rs = append(rs, ours[i]/base[i])
		}
	}
	return median(rs)
}

// spread describes the range of vs around their median, for the notes.
func spread(vs []float64) string {
	if len(vs) < 2 {
		return "1 rep"
	}
	m := median(vs)
	lo, hi := slices.Min(vs), slices.Max(vs)
	if m == 0 {
		return fmt.Sprintf("%d reps", len(vs))
	}
	return fmt.Sprintf("%d reps, %s..%s (-%.0f%%/+%.0f%%)", len(vs), num(lo), num(hi), 100*(m-lo)/m, 100*(hi-m)/m)
}
