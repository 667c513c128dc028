// Command durable-bench measures the engine against the storage it is built
// on, in one process, and prints each figure next to a baseline measured in
// the same run (see BENCHMARKS.md at the repository root for how to read
// it):
//
//	go run ./cmd/durable-bench            # the full run (a few minutes)
//	go run ./cmd/durable-bench -quick     # smaller sizes, one repetition (< 60 s)
//	go run ./cmd/durable-bench -only P1,P5 -cpuprofile /tmp/cpu
//
// Figures: P1 sequential steps vs raw bbolt Update; P2 concurrent runs vs raw
// bbolt Batch; P3 run starts; P4 recovery at Open; P5 engine cost per step
// on the memory store; P6 memory of waiting runs (in a fresh child
// process); P7 journal bytes per step and file size under retention.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/durable-go/durable"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config holds the flags.
type config struct {
	quick      bool
	reps       int
	only       string
	dir        string
	cpuProfile string
	memProfile string
	observer   bool // every engine has a Config.Observer that does nothing

	steps        int // P1
	runs         int // P2
	runSteps     int // P2
	inflight     int // P2
	starts       int // P3
	startWorkers int // P3, P6
	recoverRuns  int // P4
	recoverSteps int // P4
	costSteps    int // P5
	waiting      int // P6
	bytesRuns    int // P7
	bytesSteps   int // P7
	payload      int // P7
	fsyncs       int // machine info
	cachedRuns   int // P6: Config.MaxCachedRuns; 0: the default
}

// size is a flag with a full and a quick default.
type size struct {
	name        string
	full, quick int
	usage       string
	p           func(*config) *int
}

var sizes = []size{
	{"steps", 1000, 500, "P1: steps of the sequential run", func(c *config) *int { return &c.steps }},
	{"runs", 1000, 300, "P2: runs", func(c *config) *int { return &c.runs }},
	{"run-steps", 10, 10, "P2: steps per run", func(c *config) *int { return &c.runSteps }},
	{"inflight", 64, 64, "P2: runs in flight (the first configuration; the second has all runs in flight)", func(c *config) *int { return &c.inflight }},
	{"starts", 10_000, 2000, "P3: runs of one step", func(c *config) *int { return &c.starts }},
	{"start-workers", 64, 64, "P3, P6: goroutines calling Start", func(c *config) *int { return &c.startWorkers }},
	{"recover-runs", 10_000, 2000, "P4: unfinished runs to recover", func(c *config) *int { return &c.recoverRuns }},
	{"recover-steps", 20, 20, "P4: recorded steps per run", func(c *config) *int { return &c.recoverSteps }},
	{"cost-steps", 200_000, 50_000, "P5: steps measured on the memory store", func(c *config) *int { return &c.costSteps }},
	{"waiting", 100_000, 10_000, "P6: waiting runs (half in Sleep, half in Receive)", func(c *config) *int { return &c.waiting }},
	{"bytes-runs", 10_000, 1000, "P7: runs per write pass", func(c *config) *int { return &c.bytesRuns }},
	{"bytes-steps", 100, 100, "P7: steps per run", func(c *config) *int { return &c.bytesSteps }},
	{"payload", 16, 16, "P7: bytes of each step's result (a string)", func(c *config) *int { return &c.payload }},
	{"fsyncs", 200, 50, "machine info: fsyncs timed on -dir", func(c *config) *int { return &c.fsyncs }},
}

// figure is one bench figure.
type figure struct {
	name string
	run  func(*bench) (*result, error)
}

var figures = []figure{
	{"P1", runSequential},
	{"P2", runConcurrent},
	{"P3", runStarts},
	{"P4", runRecovery},
	{"P5", runEngineCost},
	{"P6", runMemory},
	{"P7", runBytes},
}

// bench is the state of one invocation.
type bench struct {
	cfg      config
	dir      string    // a temporary directory under -dir, removed at the end
	progress io.Writer // progress lines (stderr)
	files    int       // files named by path so far
	emptyTx  int       // fileTx of a new, empty journal; 0 until measured
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == childFlag {
		return memoryChild(args[1:], stdout, stderr)
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "durable-bench:", err)
		return 2
	}
	selected, err := selectFigures(cfg.only)
	if err != nil {
		fmt.Fprintln(stderr, "durable-bench:", err)
		return 2
	}
	dir, err := os.MkdirTemp(cfg.dir, "durable-bench-*")
	if err != nil {
		fmt.Fprintln(stderr, "durable-bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	b := &bench{cfg: cfg, dir: dir, progress: &lockedWriter{w: stderr}}

	start := time.Now()
	m, err := machineInfo(b)
	if err != nil {
		fmt.Fprintln(stderr, "durable-bench: machine info:", err)
		return 1
	}
	var results []*result
	failed := false
	for _, f := range selected {
		b.logf("%s: start", f.name)
		t0 := time.Now()
		r, err := f.run(b)
		if err != nil {
			fmt.Fprintf(stderr, "durable-bench: %s: %v\n", f.name, err)
			failed = true
			r = &result{rows: []row{{figure: f.name, what: "error", measured: err.Error(), verdict: verdictError}}}
		}
		r.elapsed = time.Since(t0)
		b.logf("%s: done in %v", f.name, r.elapsed.Round(time.Millisecond))
		results = append(results, r)
	}
	printReport(stdout, cfg, m, results, time.Since(start))
	if failed {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("durable-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.quick, "quick", false, "smaller sizes and one repetition: the whole run in under a minute")
	fs.IntVar(&c.reps, "reps", 3, "repetitions of each measurement; the table shows medians (-quick: 1)")
	fs.StringVar(&c.only, "only", "", "comma-separated figures to run, e.g. P1,P3 (default all)")
	fs.StringVar(&c.dir, "dir", os.TempDir(), "directory for the journal files (its disk is what P1-P4 and P7 measure)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of each figure to `PREFIX`-Pn.pprof (samples labelled side=engine or side=baseline)")
	fs.StringVar(&c.memProfile, "memprofile", "", "write a heap profile at the end of each figure to `PREFIX`-Pn.pprof")
	fs.BoolVar(&c.observer, "observer", false, "give every engine a Config.Observer that does nothing (durable.BaseObserver): the cost of the observer calls")
	fs.IntVar(&c.cachedRuns, "cached-runs", 0, "P6: Config.MaxCachedRuns (0: the engine's default, 4096; -1: no limit)")
	for _, s := range sizes {
		fs.IntVar(s.p(&c), s.name, s.full, fmt.Sprintf("%s (-quick: %d)", s.usage, s.quick))
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		for _, s := range sizes {
			if !set[s.name] {
				*s.p(&c) = s.quick
			}
		}
		if !set["reps"] {
			c.reps = 1
		}
	}
	if c.reps < 1 {
		return c, errors.New("-reps must be at least 1")
	}
	for _, s := range sizes {
		if *s.p(&c) < 1 {
			return c, fmt.Errorf("-%s must be at least 1", s.name)
		}
	}
	return c, nil
}

func selectFigures(only string) ([]figure, error) {
	if only == "" {
		return figures, nil
	}
	var out []figure
	for _, name := range strings.Split(only, ",") {
		name = strings.ToUpper(strings.TrimSpace(name))
		i := slices.IndexFunc(figures, func(f figure) bool { return f.name == name })
		if i < 0 {
			return nil, fmt.Errorf("-only: unknown figure %q (want P1 to P7)", name)
		}
		if !slices.ContainsFunc(out, func(f figure) bool { return f.name == name }) {
			out = append(out, figures[i])
		}
	}
	return out, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "durable-bench: "+format+"\n", args...)
}

// path returns a fresh file name in the bench directory.
func (b *bench) path(name string) string {
	b.files++
	return filepath.Join(b.dir, fmt.Sprintf("%s-%d.db", name, b.files))
}

// engineConfig is the engine configuration of every figure: defaults, and
// the engine's warnings on stderr.
func (b *bench) engineConfig(wfs ...durable.Definition) *durable.Config {
	cfg := &durable.Config{
		Workflows: wfs,
		Logger:    slog.New(slog.NewTextHandler(b.progress, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if b.cfg.observer {
		cfg.Observer = durable.BaseObserver{}
	}
	return cfg
}

// lockedWriter serializes writes: progress lines and the engine's log
// come from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
