package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal/postgres"
)

// Q4: the Q2 workload spread over several engine processes on one
// database (and one schema), against the same workload in one engine
// process, measured the same way in the same run. The processes are this
// program again (workerEnv set): each opens its own store and engine,
// says "ready", waits for "go" on its stdin, runs its share of the runs
// (its share of the runs in flight, too: the fleet has as many in flight
// as the single process), and prints what it measured as one JSON line.

// workerEnv holds a worker's configuration (JSON); set, the program is a
// worker.
const workerEnv = "DURABLE_PGBENCH_WORKER"

type workerConfig struct {
	URL, Schema, Prefix   string
	Runs, Steps, Inflight int
	CPUProfile            string // written by the worker if set
}

type workerResult struct {
	Seconds, CPU                   float64 // wall time of its share, its own CPU time
	Commits, Transactions, OneTrip int64
	Err                            string
}

// worker runs one worker process; it returns the exit code.
func worker(cfgJSON string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c workerConfig
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		fmt.Fprintln(stderr, "durable-pgbench worker:", err)
		return 2
	}
	res := runWorker(c, stdin, stdout)
	if res.Err != "" {
		json.NewEncoder(stdout).Encode(res) // a second line if Close failed: the parent reads one
		return 1
	}
	return 0
}

func runWorker(c workerConfig, stdin io.Reader, stdout io.Writer) (res workerResult) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := postgres.Open(ctx, c.URL, &postgres.Options{Schema: c.Schema, MaxConns: 16})
	if err != nil {
		return workerResult{Err: err.Error()}
	}
	defer st.Close()
	e, err := durable.New(st, &durable.Config{Workflows: []durable.Definition{concWorkflow}})
	if err != nil {
		return workerResult{Err: err.Error()}
	}
	defer func() {
		if err := e.Close(); err != nil && res.Err == "" {
			res.Err = err.Error()
		}
	}()
	fmt.Fprintln(stdout, "ready")
	in := bufio.NewReader(stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return workerResult{Err: "no go: " + err.Error()}
	}
	if c.CPUProfile != "" {
		if f, err := os.Create(c.CPUProfile); err == nil {
			defer f.Close()
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	c0 := selfCPU()
	t0 := time.Now()
	err = pool(c.Runs, c.Inflight, func(i int) error {
		_, err := durable.Run(ctx, e, concWorkflow, c.Prefix+strconv.Itoa(i), c.Steps)
		return err
	})
	res = workerResult{Seconds: time.Since(t0).Seconds(), CPU: (selfCPU() - c0).Seconds()}
	s := st.Stats()
	res.Commits, res.Transactions, res.OneTrip = s.Commits, s.Transactions, s.OneTrip
	if err != nil {
		res.Err = err.Error()
		return res
	}
	// Report, then stay connected until stdin closes: the parent reads
	// the server's CPU time first, backends included.
	json.NewEncoder(stdout).Encode(res)
	io.Copy(io.Discard, in)
	return res
}

// fleetRun runs the Q2 workload in n worker processes and returns the
// fleet's steps per second with the CPU per step (all workers', the
// server's) and the workers' results. Each worker has its share of the
// runs; of the runs in flight too, unless each (Q5) makes every worker
// keep the single process's number in flight.
func (b *bench) fleetRun(n int, each bool) (measure, []workerResult, error) {
	runs, steps, fl := b.cfg.runs, b.cfg.runSteps, b.cfg.inflight
	name := schema("q4")
	defer b.drop(name)
	exe, err := os.Executable()
	if err != nil {
		return measure{}, nil, err
	}
	type proc struct {
		cmd *exec.Cmd
		in  io.WriteCloser
		out *bufio.Reader
	}
	procs := make([]*proc, n)
	defer func() {
		for _, p := range procs {
			if p != nil && p.cmd.Process != nil {
				p.in.Close()
				p.cmd.Process.Kill()
				p.cmd.Wait()
			}
		}
	}()
	for i := range n {
		c := workerConfig{URL: b.cfg.url, Schema: name, Prefix: fmt.Sprintf("w%d-run-", i), Steps: steps,
			Runs: runs / n, Inflight: max(1, fl/n)}
		if i < runs%n {
			c.Runs++
		}
		if i < fl%n {
			c.Inflight++
		}
		if each {
			c.Inflight = fl
		}
		if b.cpuProfile != "" {
			c.CPUProfile = fmt.Sprintf("%s.q4-%d-of-%d", b.cpuProfile, i+1, n)
		}
		js, _ := json.Marshal(c)
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), workerEnv+"="+string(js))
		cmd.Stderr = b.log
		in, err := cmd.StdinPipe()
		if err != nil {
			return measure{}, nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return measure{}, nil, err
		}
		if err := cmd.Start(); err != nil {
			return measure{}, nil, err
		}
		procs[i] = &proc{cmd: cmd, in: in, out: bufio.NewReader(out)}
	}
	for i, p := range procs {
		line, err := p.out.ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			return measure{}, nil, fmt.Errorf("worker %d: %q, %v", i, line, err)
		}
	}
	c0 := b.sample()
	t0 := time.Now()
	for _, p := range procs {
		io.WriteString(p.in, "go\n")
	}
	results := make([]workerResult, n)
	for i, p := range procs {
		line, err := p.out.ReadString('\n')
		if err != nil {
			return measure{}, nil, fmt.Errorf("worker %d: %v", i, err)
		}
		if err := json.Unmarshal([]byte(line), &results[i]); err != nil {
			return measure{}, nil, fmt.Errorf("worker %d: %q: %v", i, line, err)
		}
	}
	el := time.Since(t0)
	m := b.measured(float64(runs*steps)/el.Seconds(), c0, runs*steps)
	m.client = 0
	var commits, txs int64
	for _, r := range results {
		commits, txs = commits+r.Commits, txs+r.Transactions
	}
	m.perTx = float64(commits) / float64(max(txs, 1))
	for i, p := range procs {
		p.in.Close()
		err := p.cmd.Wait()
		procs[i] = nil
		if results[i].Err == "" && err != nil {
			results[i].Err = err.Error()
		}
		if results[i].Err != "" {
			return measure{}, nil, fmt.Errorf("worker %d: %s", i, results[i].Err)
		}
		m.client += results[i].CPU * 1e6 / float64(runs*steps)
	}
	return m, results, nil
}

// fleet is Q4 and Q5.
func (b *bench) fleet() ([]row, error) {
	n := b.cfg.fleet
	var one, many, full []measure
	var trips []float64
	for rep := range b.cfg.reps {
		m1, _, err := b.fleetRun(1, false)
		if err != nil {
			return nil, fmt.Errorf("1 process: %w", err)
		}
		mn, res, err := b.fleetRun(n, false)
		if err != nil {
			return nil, fmt.Errorf("%d processes: %w", n, err)
		}
		mf, _, err := b.fleetRun(n, true)
		if err != nil {
			return nil, fmt.Errorf("%d processes, %d in flight each: %w", n, b.cfg.inflight, err)
		}
		var tx, fast int64
		for _, r := range res {
			tx += r.Transactions
			fast += r.OneTrip
		}
		trips = append(trips, roundTrips(postgres.Stats{Transactions: tx, OneTrip: fast}))
		one, many, full = append(one, m1), append(many, mn), append(full, mf)
		b.logf("Q4 rep %d: %d processes %s steps/s (%s with %d in flight each), 1 process %s steps/s", rep+1, n, num(mn.rate), num(mf.rate), b.cfg.inflight, num(m1.rate))
	}
	o, f, base := rates(many), rates(full), rates(one)
	q, qf := pairedRatio(o, base), pairedRatio(f, base)
	return []row{{
		fig: "Q4", what: fmt.Sprintf("fleet: Q2's workload split over %d engine processes", n),
		measured: num(median(o)) + " steps/s", baseline: num(median(base)) + " steps/s (1 engine process)",
		ratio: fmt.Sprintf("%.2fx", q), target: ">= 0.90x", verdict: verdict(q, 0.9),
		notes: []string{
			fmt.Sprintf("%d processes %s (%s), each with its own store (pool of 16) and engine, its share of the %d runs and of the %d in flight; %.1f commits and %.2f round trips per transaction (medians); 1 process: %s (%s), %.1f commits per transaction",
				n, num(median(o)), spread(o), b.cfg.runs, b.cfg.inflight, medianOf(many, perTx), median(trips), num(median(base)), spread(base), medianOf(one, perTx)),
			strings.Replace(strings.Replace(cpuNote("step", many, one), "engine:", fmt.Sprintf("%d processes:", n), 1), "raw pgx:", "1 process:", 1),
		},
	}, {
		fig: "Q5", what: fmt.Sprintf("fleet at capacity: %d processes, %d in flight each", n, b.cfg.inflight),
		measured: num(median(f)) + " steps/s", baseline: num(median(base)) + " steps/s (1 engine process)",
		ratio: fmt.Sprintf("%.2fx", qf), target: ">= 0.90x", verdict: verdict(qf, 0.9),
		notes: []string{
			fmt.Sprintf("%d processes %s (%s), each with its share of the %d runs and the single process's %d in flight (what each engine's capacity allows); %.1f commits per transaction (median)",
				n, num(median(f)), spread(f), b.cfg.runs, b.cfg.inflight, medianOf(full, perTx)),
			strings.Replace(strings.Replace(cpuNote("step", full, one), "engine:", fmt.Sprintf("%d processes:", n), 1), "raw pgx:", "1 process:", 1),
		},
	}}, nil
}

func perTx(m measure) float64 { return m.perTx }

// medianOf is the median of f over ms.
func medianOf(ms []measure, f func(measure) float64) float64 {
	vs := make([]float64, len(ms))
	for i, m := range ms {
		vs[i] = f(m)
	}
	return median(vs)
}
