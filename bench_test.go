package durable_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// The engine's benchmarks sit beside raw bbolt doing the same number of
// fsynced writes of the same size, so one run shows what the engine costs
// over the storage it is built on. ns/op is per step (per put for bbolt).

type benchResult struct {
	N     int    `json:"n"`
	Label string `json:"label"`
}

// maxStepsPerRun splits long benchmarks into several runs, so a run's
// journal stays of a realistic length.
const maxStepsPerRun = 10_000

var benchSteps = durable.Define("bench-steps", func(ctx durable.Context, n int) (benchResult, error) {
	var last benchResult
	for i := range n {
		r, err := durable.Step(ctx, "step", func(context.Context) (benchResult, error) {
			return benchResult{N: i, Label: "ok"}, nil
		})
		if err != nil {
			return last, err
		}
		last = r
	}
	return last, nil
})

func openBenchBolt(b *testing.B) *durable.Engine {
	b.Helper()
	e, err := durable.Open(filepath.Join(b.TempDir(), "bench.journal"), quiet(config(benchSteps)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// runSteps executes n steps in runs of at most maxStepsPerRun, one run at a
// time.
func runSteps(b *testing.B, e *durable.Engine, prefix string, n int) {
	b.Helper()
	ctx := context.Background()
	for i := 0; n > 0; i++ {
		k := min(n, maxStepsPerRun)
		if _, err := durable.Run(ctx, e, benchSteps, fmt.Sprintf("%s-%d", prefix, i), k); err != nil {
			b.Fatal(err)
		}
		n -= k
	}
}

// BenchmarkStepBolt: one run doing sequential steps, each fsynced.
func BenchmarkStepBolt(b *testing.B) {
	e := openBenchBolt(b)
	b.ResetTimer()
	runSteps(b, e, "seq", b.N)
}

// BenchmarkStepsConcurrentBolt: 64 runs in flight doing steps; their
// commits share bbolt transactions.
func BenchmarkStepsConcurrentBolt(b *testing.B) {
	const runs = 64
	e := openBenchBolt(b)
	b.ResetTimer()
	var wg sync.WaitGroup
	for r := range runs {
		n := b.N / runs
		if r < b.N%runs {
			n++
		}
		wg.Go(func() { runSteps(b, e, fmt.Sprintf("conc-%d", r), n) })
	}
	wg.Wait()
}

// BenchmarkStepMemory: sequential steps on the memory store: the engine's
// own cost, with no I/O.
func BenchmarkStepMemory(b *testing.B) {
	e, err := durable.New(journal.NewMemory(), quiet(config(benchSteps)))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ReportAllocs()
	b.ResetTimer()
	runSteps(b, e, "mem", b.N)
}

var (
	recordSizeOnce sync.Once
	recordSizeVal  int
	recordSizeErr  error
)

// benchRecordSize returns the size of the value the engine stores for one
// step of benchSteps, read back from a real journal.
func benchRecordSize(b *testing.B) int {
	b.Helper()
	recordSizeOnce.Do(func() { recordSizeVal, recordSizeErr = measureRecord(filepath.Join(b.TempDir(), "size.journal")) })
	if recordSizeErr != nil {
		b.Fatalf("measuring the engine's record size: %v", recordSizeErr)
	}
	return recordSizeVal
}

func measureRecord(path string) (int, error) {
	e, err := durable.Open(path, quiet(config(benchSteps)))
	if err != nil {
		return 0, err
	}
	if _, err := durable.Run(context.Background(), e, benchSteps, "size", 1); err != nil {
		e.Close()
		return 0, err
	}
	if err := e.Close(); err != nil {
		return 0, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	size := 0
	err = db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket([]byte("records"))
		if recs == nil {
			return fmt.Errorf("no records bucket")
		}
		run := recs.Bucket([]byte("size"))
		if run == nil {
			return fmt.Errorf("no records of run size")
		}
		return run.ForEach(func(k, v []byte) error {
			size = max(size, len(v))
			return nil
		})
	})
	if err == nil && size == 0 {
		err = fmt.Errorf("no record found")
	}
	return size, err
}

func openRawBolt(b *testing.B) (*bolt.DB, []byte) {
	b.Helper()
	size := benchRecordSize(b)
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil) // fsync on (NoSync false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("records"))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return db, make([]byte, size)
}

func putRecord(tx *bolt.Tx, run string, i int, value []byte) error {
	bk, err := tx.Bucket([]byte("records")).CreateBucketIfNotExists([]byte(run))
	if err != nil {
		return err
	}
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], uint64(i))
	return bk.Put(key[:], value)
}

// BenchmarkRawBoltUpdate: one db.Update (one fsync) per put of a value the
// size of the engine's step record, into a nested bucket.
func BenchmarkRawBoltUpdate(b *testing.B) {
	db, value := openRawBolt(b)
	b.ResetTimer()
	for i := range b.N {
		if err := db.Update(func(tx *bolt.Tx) error { return putRecord(tx, "run", i, value) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(value)), "B/record")
}

// BenchmarkRawBoltBatch: db.Batch from 64 goroutines, MaxBatchSize 64.
func BenchmarkRawBoltBatch(b *testing.B) {
	const writers = 64
	db, value := openRawBolt(b)
	db.MaxBatchSize = writers
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		run := fmt.Sprintf("run-%d", w)
		wg.Go(func() {
			for i := range n {
				if err := db.Batch(func(tx *bolt.Tx) error { return putRecord(tx, run, i, value) }); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(len(value)), "B/record")
}

// BenchmarkStepMemoryObserver is BenchmarkStepMemory with a
// Config.Observer that does nothing: the cost of the observer calls.
func BenchmarkStepMemoryObserver(b *testing.B) {
	cfg := quiet(config(benchSteps))
	cfg.Observer = durable.BaseObserver{}
	e, err := durable.New(journal.NewMemory(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ReportAllocs()
	b.ResetTimer()
	runSteps(b, e, "mem", b.N)
}
