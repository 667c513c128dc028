package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/durable-go/durable"
)

// The baselines: raw bbolt doing the writes (or reads) the engine's
// journal must do at the least, with the options journal/bolt_open.go uses
// (default options, so every commit is fsynced; the hashmap freelist). A
// step's record is one put of an 8-byte key and the record's encoded
// value into the run's nested bucket under "records"; the raw writes put
// the same number of bytes in the same shape.

var rawRecords = []byte("records")

func openRaw(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(rawRecords)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// putRaw puts value at position i of run's nested bucket.
func putRaw(tx *bolt.Tx, run []byte, i int, value []byte) error {
	b, err := tx.Bucket(rawRecords).CreateBucketIfNotExists(run)
	if err != nil {
		return err
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(i))
	return b.Put(k[:], value)
}

func rawValue(size int) []byte {
	v := make([]byte, size)
	for i := range v {
		v[i] = byte(i*7 + 1)
	}
	return v
}

// rawUpdate makes n commits with db.Update, one put of a valueSize-byte
// value each, and returns commits per second and the process's CPU time.
func rawUpdate(path string, n, valueSize int) (float64, time.Duration, error) {
	db, err := openRaw(path)
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(path)
	defer db.Close()
	value, run := rawValue(valueSize), []byte("run-0")
	t0, c0 := time.Now(), cpuTime()
	for i := range n {
		if err := db.Update(func(tx *bolt.Tx) error { return putRaw(tx, run, i, value) }); err != nil {
			return 0, 0, err
		}
	}
	return float64(n) / time.Since(t0).Seconds(), cpuTime() - c0, nil
}

// rawBatch writes runs×steps values with db.Batch from writers goroutines
// (db.MaxBatchSize = writers, the default MaxBatchDelay): each goroutine
// takes a run and writes its steps one after the other, as the engine's
// runs do. It returns writes per second and the write transactions made.
func rawBatch(path string, runs, steps, writers, valueSize int) (float64, int, error) {
	db, err := openRaw(path)
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(path)
	defer db.Close()
	tx0 := lastTx(db)
	db.MaxBatchSize = writers
	value := rawValue(valueSize)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	t0 := time.Now()
	for range writers {
		wg.Go(func() {
			for r := range next {
				run := []byte("run-" + strconv.Itoa(r))
				for i := range steps {
					if err := db.Batch(func(tx *bolt.Tx) error { return putRaw(tx, run, i, value) }); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
				}
			}
		})
	}
	for r := range runs {
		next <- r
	}
	close(next)
	wg.Wait()
	el := time.Since(t0)
	if firstErr != nil {
		return 0, 0, firstErr
	}
	return float64(runs*steps) / el.Seconds(), lastTx(db) - tx0, nil
}

// lastTx returns the id of the last write transaction committed to db:
// bbolt numbers them from the file's creation.
func lastTx(db *bolt.DB) int {
	id := 0
	db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
	return id
}

// fileTx is lastTx of the bbolt file at path, opened read-only.
func fileTx(path string) (int, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return lastTx(db), nil
}

// rawRead reads every record of a journal file (every value of every
// nested bucket under "records") in one read transaction, opening and
// closing the file, and returns how many values it read and how long it
// took: the floor under recovery, which must read them all.
func rawRead(path string) (int, time.Duration, error) {
	t0 := time.Now()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(rawRecords)
		if recs == nil {
			return errors.New("no records bucket")
		}
		return recs.ForEachBucket(func(name []byte) error {
			return recs.Bucket(name).ForEach(func(k, v []byte) error {
				n++
				return nil
			})
		})
	})
	return n, time.Since(t0), err
}

// recordStats walks the journal file at path read-only and returns the
// number of records of run id and their mean encoded size (value bytes),
// to size the raw writes like the engine's.
func recordStats(path, id string) (n int, meanValue float64, err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	total := 0
	err = db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(rawRecords)
		if recs == nil {
			return errors.New("no records bucket")
		}
		b := recs.Bucket([]byte(id))
		if b == nil {
			return fmt.Errorf("no records of run %q", id)
		}
		return b.ForEach(func(k, v []byte) error {
			n++
			total += len(v)
			return nil
		})
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("run %q has no records", id)
	}
	if err != nil {
		return 0, 0, err
	}
	return n, float64(total) / float64(n), nil
}

// journalTxs returns how many bbolt write transactions the engine made in
// the journal at path (closed), not counting those that created it.
func (b *bench) journalTxs(path string) (int, error) {
	if b.emptyTx == 0 {
		empty := b.path("empty")
		defer os.Remove(empty)
		e, err := durable.Open(empty, b.engineConfig())
		if err != nil {
			return 0, err
		}
		if err := e.Close(); err != nil {
			return 0, err
		}
		if b.emptyTx, err = fileTx(empty); err != nil {
			return 0, err
		}
	}
	n, err := fileTx(path)
	return n - b.emptyTx, err
}
