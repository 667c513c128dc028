package journal_test

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/durable-go/durable/journal"
)

// The benchmarks come in pairs: the journal beside raw bbolt doing the same
// writes (one ~64-byte value per commit into a nested bucket, fsync on), so
// their ns/op read as a ratio measured in one run. They assert nothing.
//
//	go test -run='^$' -bench=. -benchtime=2s ./journal/

const benchWriters = 64

var (
	benchData = make([]byte, 64)
	benchTime = time.Unix(1700000000, 0)
)

func openBenchBolt(b *testing.B, runs int) *journal.Bolt {
	b.Helper()
	s, err := journal.OpenBolt(filepath.Join(b.TempDir(), "j.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	batch := &journal.Batch{}
	for i := range runs {
		batch.Create = append(batch.Create, journal.Run{ID: fmt.Sprintf("run-%03d", i), Workflow: "wf", Status: journal.StatusRunning})
	}
	if err := s.Commit(b.Context(), batch); err != nil {
		b.Fatal(err)
	}
	return s
}

func openRawBolt(b *testing.B) *bolt.DB {
	b.Helper()
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
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
	return db
}

// rawPut writes one value of the journal's record size under run's nested
// bucket, as the journal does.
func rawPut(tx *bolt.Tx, run string, pos uint32) error {
	rb, err := tx.Bucket([]byte("records")).CreateBucketIfNotExists([]byte(run))
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint32(k[:4], pos)
	return rb.Put(k[:], rawValue)
}

// rawValue is as long as the journal's encoding of benchRecord: 5 header
// bytes, the msgpack array and the 64 data bytes.
var rawValue = make([]byte, 5+1+1+1+5+9+2+64)

func benchRecord(pos uint32) journal.Record {
	return journal.Record{Pos: pos, Kind: 1, Name: "step", Time: benchTime, Data: benchData}
}

// BenchmarkBoltCommitSequential is one goroutine committing one append per
// Commit: every commit is its own transaction and fsync.
func BenchmarkBoltCommitSequential(b *testing.B) {
	s := openBenchBolt(b, 1)
	ctx := b.Context()
	for i := 0; b.Loop(); i++ {
		err := s.Commit(ctx, &journal.Batch{Now: benchTime, Append: []journal.Append{{RunID: "run-000", Record: benchRecord(uint32(i))}}})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawBoltUpdate is BenchmarkBoltCommitSequential's baseline: one
// db.Update per value.
func BenchmarkRawBoltUpdate(b *testing.B) {
	db := openRawBolt(b)
	for i := 0; b.Loop(); i++ {
		if err := db.Update(func(tx *bolt.Tx) error { return rawPut(tx, "run-000", uint32(i)) }); err != nil {
			b.Fatal(err)
		}
	}
}

// parallelism sets RunParallel to use benchWriters goroutines (rounded up
// to a multiple of GOMAXPROCS) and returns how many it will use.
func parallelism(b *testing.B) int {
	procs := runtime.GOMAXPROCS(0)
	p := max(1, (benchWriters+procs-1)/procs)
	b.SetParallelism(p)
	return p * procs
}

// BenchmarkBoltCommitParallel is 64 goroutines, each appending to its own
// run one record per Commit: group commit shares transactions and fsyncs.
func BenchmarkBoltCommitParallel(b *testing.B) {
	s := openBenchBolt(b, benchWriters*2)
	ctx := b.Context()
	var next atomic.Int32
	writers := parallelism(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("run-%03d", next.Add(1)-1)
		for pos := uint32(0); pb.Next(); pos++ {
			err := s.Commit(ctx, &journal.Batch{Now: benchTime, Append: []journal.Append{{RunID: id, Record: benchRecord(pos)}}})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(writers), "writers")
}

// BenchmarkRawBoltBatch is BenchmarkBoltCommitParallel's baseline: bbolt's
// own db.Batch with MaxBatchSize 64 from 64 goroutines.
func BenchmarkRawBoltBatch(b *testing.B) {
	db := openRawBolt(b)
	db.MaxBatchSize = benchWriters
	var next atomic.Int32
	writers := parallelism(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("run-%03d", next.Add(1)-1)
		for pos := uint32(0); pb.Next(); pos++ {
			if err := db.Batch(func(tx *bolt.Tx) error { return rawPut(tx, id, pos) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(writers), "writers")
}
