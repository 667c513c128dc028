// Command durable-pgbench measures the engine on the PostgreSQL journal
// against raw pgx on the same server, in one run, and prints each figure
// next to its baseline (the core cmd/durable-bench cannot import pgx: this
// is its Postgres mode):
//
//	export DURABLE_POSTGRES_URL=$(scripts/postgres start)   # at the repository root
//	cd journal/postgres && go run ./cmd/durable-pgbench [-quick]
//
// Figures: Q1 sequential steps of one run vs raw pgx BEGIN/INSERT/COMMIT
// per write; Q2 1,000 runs x 10 steps with 64 in flight vs the same
// writes from 64 goroutines, each BEGIN/INSERT/COMMIT on its own
// connection; Q3 10,000 runs of one step; Q4 Q2's workload spread over
// three engine processes (this program again, as workers) against the
// same in one engine process; Q5 the three processes with 64 in flight
// each (a fleet at capacity) against the same one process. Each measurement runs in a fresh schema,
// dropped afterwards; the figures are medians of -reps runs. The notes
// give the CPU time per step of this process and of the server (when it
// runs on this machine), and round trips per transaction.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

func main() {
	if c := os.Getenv(workerEnv); c != "" {
		os.Exit(worker(c, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	url      string
	reps     int
	steps    int // Q1
	runs     int // Q2
	runSteps int // Q2
	inflight int // Q2, and Q2's raw writers
	starts   int // Q3
	workers  int // Q3
	fleet    int // Q4: engine processes
	only     string
}

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("durable-pgbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "smaller sizes, one repetition")
	fs.StringVar(&c.url, "url", os.Getenv("DURABLE_POSTGRES_URL"), "the server (default $DURABLE_POSTGRES_URL; scripts/postgres start gives one)")
	fs.IntVar(&c.reps, "reps", 3, "repetitions of each measurement; the table shows medians")
	fs.IntVar(&c.steps, "steps", 1000, "Q1: steps of the sequential run")
	fs.IntVar(&c.runs, "runs", 1000, "Q2: runs")
	fs.IntVar(&c.runSteps, "run-steps", 10, "Q2: steps per run")
	fs.IntVar(&c.inflight, "inflight", 64, "Q2: runs in flight (and raw writers)")
	fs.IntVar(&c.starts, "starts", 10_000, "Q3: runs of one step")
	fs.IntVar(&c.workers, "start-workers", 64, "Q3: goroutines calling Start")
	fs.IntVar(&c.fleet, "fleet", 3, "Q4: engine processes sharing the database")
	fs.StringVar(&c.only, "only", "", "comma-separated figures to run, e.g. Q1,Q3 (default all)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE` (and Q4's workers' to FILE.q4-I-of-N)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *quick {
		c.reps, c.steps, c.runs, c.starts = 1, 300, 300, 2000
	}
	if c.url == "" {
		fmt.Fprintln(stderr, "durable-pgbench: no server: set DURABLE_POSTGRES_URL (export DURABLE_POSTGRES_URL=$(scripts/postgres start)) or pass -url")
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "durable-pgbench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "durable-pgbench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	b := &bench{cfg: c, log: &syncWriter{w: stderr}, postmaster: findPostmaster(c.url), cpuProfile: *cpuProfile}
	figs := []struct {
		name string
		fn   func(*bench) ([]row, error)
	}{{"Q1", (*bench).sequential}, {"Q2", (*bench).concurrent}, {"Q3", (*bench).starts}, {"Q4", (*bench).fleet}}
	var rows []row
	failed := false
	start := time.Now()
	for _, f := range figs {
		if c.only != "" && !slices.Contains(strings.Split(c.only, ","), f.name) {
			continue
		}
		b.logf("%s: start", f.name)
		rs, err := f.fn(b)
		if err != nil {
			fmt.Fprintf(stderr, "durable-pgbench: %s: %v\n", f.name, err)
			failed = true
			rs = []row{{fig: f.name, what: "error", measured: err.Error(), verdict: "ERROR"}}
		}
		rows = append(rows, rs...)
	}
	ver, _ := serverVersion(c.url)
	fmt.Fprintf(stdout, "durable-pgbench: %s, GOMAXPROCS %d, %s; %d repetitions, medians; %v in all\n\n",
		runtime.Version(), runtime.GOMAXPROCS(0), ver, c.reps, time.Since(start).Round(time.Second))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fig\twhat\tmeasured\tbaseline\tratio\ttarget\tverdict")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.fig, r.what, r.measured, r.baseline, r.ratio, r.target, r.verdict)
	}
	tw.Flush()
	for _, r := range rows {
		for _, n := range r.notes {
			fmt.Fprintf(stdout, "  %s: %s\n", r.fig, n)
		}
	}
	if failed {
		return 1
	}
	return 0
}

type bench struct {
	cfg        config
	log        io.Writer
	postmaster int    // the server's pid when it runs on this machine, else 0
	cpuProfile string // -cpuprofile: Q4's workers write theirs beside it
}

// findPostmaster returns the pid of the server's postmaster when the
// server runs on this machine (its backend's parent is a postgres
// process we can see), else 0.
func findPostmaster(url string) int {
	var pid int32
	if err := queryOne(url, "SELECT pg_backend_pid()", &pid); err != nil {
		return 0
	}
	pp := parentOf(int(pid))
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pp))
	if pp <= 1 || err != nil || !strings.HasPrefix(strings.TrimSpace(string(comm)), "postgres") {
		return 0
	}
	return pp
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// row is one line of the report.
type row struct {
	fig, what, measured, baseline, ratio, target, verdict string
	notes                                                 []string
}

func verdict(got, want float64) string {
	if got >= want {
		return "ok"
	}
	return "BELOW"
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairedRatio is the median of ours[i]/base[i]: each engine measurement
// against the baseline measured right after it.
func pairedRatio(ours, base []float64) float64 {
	rs := make([]float64, min(len(ours), len(base)))
	for i := range rs {
		rs[i] = ours[i] / base[i]
	}
	return median(rs)
}

func num(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	if v < 100 {
		s = fmt.Sprintf("%.1f", v)
	}
	// thousands separators
	i := strings.IndexByte(s, '.')
	if i < 0 {
		i = len(s)
	}
	for j := i - 3; j > 0; j -= 3 {
		s = s[:j] + "," + s[j:]
	}
	return s
}

func spread(vs []float64) string {
	if len(vs) < 2 {
		return "1 run"
	}
	return fmt.Sprintf("min %s, max %s", num(slices.Min(vs)), num(slices.Max(vs)))
}

var _ = context.Background

// syncWriter serializes writes: Q4's workers' stderr goes to the log too.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
