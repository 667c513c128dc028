package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// timeout bounds each measurement, so a hang is an error.
const timeout = 20 * time.Minute

// item is the result of the figures' steps: a small struct.
type item struct {
	ID   int
	Name string
	OK   bool
}

// steps runs n steps, each returning an item.
func steps(ctx durable.Context, n int) (int, error) {
	sum := 0
	for i := range n {
		it, err := durable.Step(ctx, "step", func(context.Context) (item, error) { return item{ID: i, Name: "item", OK: true}, nil })
		if err != nil {
			return 0, err
		}
		sum += it.ID
	}
	return sum, nil
}

var (
	seqWorkflow   = durable.Define("bench-sequential", steps)
	concWorkflow  = durable.Define("bench-concurrent", steps)
	startWorkflow = durable.Define("bench-start", steps)
)

// schema returns a fresh schema name; drop drops it.
func schema(prefix string) string {
	var r [4]byte
	rand.Read(r[:])
	return "bench_" + prefix + "_" + hex.EncodeToString(r[:])
}

func (b *bench) drop(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, b.cfg.url)
	if err != nil {
		b.logf("drop schema %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		b.logf("drop schema %s: %v", name, err)
	}
}

// engine opens a store in a fresh schema and an engine on it; done closes
// both, reports the mean size of the records written and drops the schema.
func (b *bench) engine(prefix string, wf durable.Definition) (e *durable.Engine, done func() (recSize float64, err error), err error) {
	e, _, done, err = b.engineStore(prefix, wf)
	return e, done, err
}

// engineStore is engine that also returns the store.
func (b *bench) engineStore(prefix string, wf durable.Definition) (e *durable.Engine, s *postgres.Store, done func() (recSize float64, err error), err error) {
	name := schema(prefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err = postgres.Open(ctx, b.cfg.url, &postgres.Options{Schema: name, MaxConns: 16})
	if err != nil {
		return nil, nil, nil, err
	}
	e, err = durable.New(s, &durable.Config{Workflows: []durable.Definition{wf}})
	if err != nil {
		s.Close()
		b.drop(name)
		return nil, nil, nil, err
	}
	return e, s, func() (float64, error) {
		defer b.drop(name)
		err := e.Close()
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		var size float64
		if err == nil {
			err = queryOne(b.cfg.url, fmt.Sprintf("SELECT coalesce(avg(length(value)), 0)::float8 FROM %s.records", pgx.Identifier{name}.Sanitize()), &size)
		}
		return size, err
	}, nil
}

func queryOne(url, q string, dst any) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, q).Scan(dst)
}

func serverVersion(url string) (string, error) {
	var v string
	err := queryOne(url, "SELECT 'PostgreSQL ' || current_setting('server_version') || ', synchronous_commit=' || current_setting('synchronous_commit') || ', fsync=' || current_setting('fsync')", &v)
	return v, err
}

// rawTable makes a table for the raw baselines in a fresh schema and
// returns its qualified name and a function that drops the schema.
func (b *bench) rawTable(ctx context.Context, pool *pgxpool.Pool) (string, func(), error) {
	name := schema("raw")
	t := pgx.Identifier{name, "records"}.Sanitize()
	_, err := pool.Exec(ctx, fmt.Sprintf("CREATE SCHEMA %s; CREATE TABLE %s (run_id bytea, pos bigint, value bytea NOT NULL, PRIMARY KEY (run_id, pos))",
		pgx.Identifier{name}.Sanitize(), t))
	return t, func() { b.drop(name) }, err
}

// measure is one measurement: a rate, and the CPU it cost per unit
// (microseconds of this process, and of the server when known).
type measure struct {
	rate           float64
	client, server float64
	serverOK       bool
	perTx          float64 // commits per transaction, where counted
}

func (b *bench) measured(rate float64, from cpuSample, n int) measure {
	m := measure{rate: rate}
	m.client, m.server, m.serverOK = cpuPer(from, b.sample(), n)
	return m
}

// cpuNote describes the CPU per unit of the engine's and the baseline's
// measurements (medians).
func cpuNote(unit string, ours, base []measure) string {
	med := func(ms []measure, f func(measure) float64) float64 {
		vs := make([]float64, len(ms))
		for i, m := range ms {
			vs[i] = f(m)
		}
		return median(vs)
	}
	cl := func(m measure) float64 { return m.client }
	sv := func(m measure) float64 { return m.server }
	s := fmt.Sprintf("CPU per %s (medians): engine: this process %.0f µs", unit, med(ours, cl))
	if len(ours) > 0 && ours[0].serverOK {
		s += fmt.Sprintf(", server %.0f µs", med(ours, sv))
	}
	if len(base) > 0 {
		s += fmt.Sprintf("; raw pgx: this process %.0f µs", med(base, cl))
		if base[0].serverOK {
			s += fmt.Sprintf(", server %.0f µs", med(base, sv))
		}
	}
	if len(ours) > 0 && !ours[0].serverOK {
		s += " (server CPU not measured: not a local server)"
	}
	return s
}

func rates(ms []measure) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = m.rate
	}
	return out
}

// rawSequential writes n values of size bytes, one BEGIN, INSERT, COMMIT
// each, on one connection, and returns the commits per second.
func (b *bench) rawSequential(n, size int) (measure, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, b.cfg.url)
	if err != nil {
		return measure{}, err
	}
	defer pool.Close()
	table, drop, err := b.rawTable(ctx, pool)
	defer drop()
	if err != nil {
		return measure{}, err
	}
	ins := "INSERT INTO " + table + " VALUES ($1, $2, $3)"
	val := make([]byte, size)
	id := []byte("seq")
	c0 := b.sample()
	t0 := time.Now()
	for i := range n {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, ins, id, i, val)
			return err
		})
		if err != nil {
			return measure{}, err
		}
	}
	return b.measured(float64(n)/time.Since(t0).Seconds(), c0, n), nil
}

// rawConcurrent writes runs*n values of size bytes from writers
// goroutines, each on its own connection, one BEGIN, INSERT, COMMIT per
// value (the server shares WAL flushes among them), and returns writes
// per second.
func (b *bench) rawConcurrent(runs, n, writers, size int) (measure, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(b.cfg.url)
	if err != nil {
		return measure{}, err
	}
	cfg.MaxConns = int32(writers)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return measure{}, err
	}
	defer pool.Close()
	table, drop, err := b.rawTable(ctx, pool)
	defer drop()
	if err != nil {
		return measure{}, err
	}
	ins := "INSERT INTO " + table + " VALUES ($1, $2, $3)"
	val := make([]byte, size)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	c0 := b.sample()
	t0 := time.Now()
	for range writers {
		wg.Go(func() {
			for {
				r := int(next.Add(1) - 1)
				if r >= runs {
					return
				}
				id := []byte("run-" + strconv.Itoa(r))
				for i := range n {
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						_, err := tx.Exec(ctx, ins, id, i, val)
						return err
					})
					if err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return b.measured(float64(runs*n)/time.Since(t0).Seconds(), c0, runs*n), first
}

// pool calls fn(i) for every i in [0, n) from workers goroutines and
// returns the first error.
func pool(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// Q1: one run of sequential steps.
func (b *bench) sequential() ([]row, error) {
	n := b.cfg.steps
	var ours, raw []measure
	var trips []float64
	size := 0
	for rep := range b.cfg.reps {
		e, st, done, err := b.engineStore("q1", seqWorkflow)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		c0 := b.sample()
		t0 := time.Now()
		_, err = durable.Run(ctx, e, seqWorkflow, "seq", n)
		el := time.Since(t0)
		m := b.measured(float64(n)/el.Seconds(), c0, n)
		cancel()
		trips = append(trips, roundTrips(st.Stats()))
		sz, derr := done()
		if err == nil {
			err = derr
		}
		if err != nil {
			return nil, err
		}
		size = int(sz)
		ours = append(ours, m)
		r, err := b.rawSequential(n, size)
		if err != nil {
			return nil, fmt.Errorf("raw: %w", err)
		}
		raw = append(raw, r)
		b.logf("Q1 rep %d: engine %s steps/s, raw %s commits/s", rep+1, num(m.rate), num(r.rate))
	}
	o, base := rates(ours), rates(raw)
	q := pairedRatio(o, base)
	return []row{{
		fig: "Q1", what: fmt.Sprintf("sequential: 1 run x %d steps", n),
		measured: num(median(o)) + " steps/s", baseline: num(median(base)) + " commits/s (pgx BEGIN/INSERT/COMMIT)",
		ratio: fmt.Sprintf("%.2fx", q), target: ">= 0.80x", verdict: verdict(q, 0.8),
		notes: []string{
			fmt.Sprintf("engine %s (%s), %.3f ms per step; it also commits the run's creation and result; %.2f round trips per commit (median)", num(median(o)), spread(o), 1000/median(o), median(trips)),
			fmt.Sprintf("raw pgx: one transaction (BEGIN, INSERT of a %d-byte value, COMMIT: 3 round trips) per write on one connection: %s (%s)", size, num(median(base)), spread(base)),
			cpuNote("step (raw: per commit)", ours, raw),
		},
	}}, nil
}

// roundTrips is the mean number of round trips per group transaction: 1
// for those committed from the run cache, 2 for the others.
func roundTrips(s postgres.Stats) float64 {
	if s.Transactions == 0 {
		return 0
	}
	return float64(s.OneTrip+2*(s.Transactions-s.OneTrip)) / float64(s.Transactions)
}

// Q2: many runs of a few steps, inflight at a time.
func (b *bench) concurrent() ([]row, error) {
	runs, n, fl := b.cfg.runs, b.cfg.runSteps, b.cfg.inflight
	var ours, raw []measure
	var perTx, trips []float64
	size := 0
	for rep := range b.cfg.reps {
		e, st, done, err := b.engineStore("q2", concWorkflow)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		c0 := b.sample()
		t0 := time.Now()
		err = pool(runs, fl, func(i int) error {
			_, err := durable.Run(ctx, e, concWorkflow, "run-"+strconv.Itoa(i), n)
			return err
		})
		el := time.Since(t0)
		m := b.measured(float64(runs*n)/el.Seconds(), c0, runs*n)
		cancel()
		trips = append(trips, roundTrips(st.Stats()))
		sz, derr := done()
		if err == nil {
			err = derr
		}
		if err != nil {
			return nil, err
		}
		size = int(sz)
		ours = append(ours, m)
		perTx = append(perTx, float64(st.Stats().Commits)/float64(max(st.Stats().Transactions, 1)))
		r, err := b.rawConcurrent(runs, n, fl, size)
		if err != nil {
			return nil, fmt.Errorf("raw: %w", err)
		}
		raw = append(raw, r)
		b.logf("Q2 rep %d: engine %s steps/s, raw %s writes/s", rep+1, num(m.rate), num(r.rate))
	}
	ors, bs := rates(ours), rates(raw)
	o, q := median(ors), pairedRatio(ors, bs)
	return []row{{
		fig: "Q2", what: fmt.Sprintf("concurrent: %d runs x %d steps, %d in flight", runs, n, fl),
		measured: fmt.Sprintf("%s steps/s", num(o)), baseline: fmt.Sprintf("%s writes/s (pgx, %d goroutines)", num(median(bs)), fl),
		ratio: fmt.Sprintf("%.2fx", q), target: ">= 15,000 steps/s", verdict: verdict(o, 15000),
		notes: []string{
			fmt.Sprintf("engine %s steps/s (%s) = %s runs/s; each run also commits its creation and result; %.1f commits per transaction, %.2f round trips per transaction (medians)", num(o), spread(ors), num(o/float64(n)), median(perTx), median(trips)),
			fmt.Sprintf("raw pgx: %d goroutines, each on its own connection, one transaction (BEGIN, INSERT of a %d-byte value, COMMIT) per write; the server shares WAL flushes: %s writes/s (%s)", fl, size, num(median(bs)), spread(bs)),
			cpuNote("step (raw: per write)", ours, raw),
			"DBOS on this machine's PostgreSQL 15 does about 3,100 steps/s on this workload (the issue's figure): the target is 5x that",
		},
	}}, nil
}

// Q3: runs of one step, started from a pool of goroutines.
func (b *bench) starts() ([]row, error) {
	n, workers := b.cfg.starts, b.cfg.workers
	var ours, perTx, trips []float64
	var cpu []measure
	for rep := range b.cfg.reps {
		e, st, done, err := b.engineStore("q3", startWorkflow)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		c0 := b.sample()
		t0 := time.Now()
		hs := make([]*durable.Handle[int], n)
		err = pool(n, workers, func(i int) error {
			h, err := durable.Start(ctx, e, startWorkflow, "start-"+strconv.Itoa(i), 1)
			hs[i] = h
			return err
		})
		for _, h := range hs {
			if err != nil {
				break
			}
			_, err = h.Result(ctx)
		}
		el := time.Since(t0)
		cpu = append(cpu, b.measured(float64(n)/el.Seconds(), c0, n))
		cancel()
		trips = append(trips, roundTrips(st.Stats()))
		if _, derr := done(); err == nil {
			err = derr
		}
		if err != nil {
			return nil, err
		}
		ours = append(ours, float64(n)/el.Seconds())
		perTx = append(perTx, float64(st.Stats().Commits)/float64(max(st.Stats().Transactions, 1)))
		b.logf("Q3 rep %d: %s runs/s", rep+1, num(ours[rep]))
	}
	o := median(ours)
	return []row{{
		fig: "Q3", what: fmt.Sprintf("starts: %d runs of 1 step (Start, then Result)", n),
		measured: num(o) + " runs/s", target: ">= 5,000 runs/s", verdict: verdict(o, 5000),
		notes: []string{
			fmt.Sprintf("engine %s runs/s (%s), Start from %d goroutines; 3 commits per run, %.1f commits per transaction, %.2f round trips per transaction (medians)", num(o), spread(ours), workers, median(perTx), median(trips)),
			cpuNote("run", cpu, nil),
		},
	}}, nil
}
