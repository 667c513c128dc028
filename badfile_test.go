package durable_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// openFails opens path, which must fail with an error matching want and
// leave the file's bytes as they were.
func openFails(t *testing.T, path string, want error) {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		e   *durable.Engine
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("Open panicked: %v", p)}
			}
		}()
		e, err := durable.Open(path, quiet(&durable.Config{LockTimeout: 200 * time.Millisecond}))
		done <- result{e, err}
	}()
	r := recv(t, done, "Open of a bad file")
	if r.err == nil {
		r.e.Close()
		t.Fatalf("Open(%s) succeeded; want an error matching %v", filepath.Base(path), want)
	}
	if !errors.Is(r.err, want) {
		t.Errorf("Open(%s): err = %v; want it to match %v", filepath.Base(path), r.err, want)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("Open changed the file: %d bytes before, %d after", len(before), len(after))
	}
}

func TestOpenEmptyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	openFails(t, path, journal.ErrNotJournal)
}

func TestOpenRandomBytes(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 100, 4096, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "random.db")
			data := make([]byte, size)
			r := rand.New(rand.NewPCG(uint64(size), 42))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			openFails(t, path, journal.ErrNotJournal)
		})
	}
}

func TestOpenForeignBoltFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("users"))
		if err != nil {
			return err
		}
		return b.Put([]byte("alice"), []byte(`{"admin":true}`))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	openFails(t, path, journal.ErrNotJournal)
}

func TestOpenTruncatedJournal(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "journal.db")
	wf := durable.Define("fill", func(ctx durable.Context, in int) (string, error) {
		var s string
		for i := range 4 {
			v, err := durable.Step(ctx, fmt.Sprint("s", i), func(context.Context) (string, error) {
				return fmt.Sprintf("%d-%0500d", in, i), nil
			})
			if err != nil {
				return "", err
			}
			s += v[:1]
		}
		return s, nil
	})
	e, err := durable.Open(path, quiet(config(wf)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	// Enough data that the journal spans many pages.
	for batch := 0; ; batch++ {
		errs := make(chan error, 20)
		for i := range 20 {
			go func() {
				_, err := durable.Run(ctx, e, wf, fmt.Sprintf("run-%d-%d", batch, i), i)
				errs <- err
			}()
		}
		for range 20 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if fi, err := os.Stat(path); err != nil {
			t.Fatal(err)
		} else if fi.Size() >= 256<<10 || batch > 50 {
			break
		}
	}
	mustClose(t, e)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The half must cut into the data, not only into the file's unused
	// tail (bbolt grows files ahead of use).
	hwm := boltHighWater(t, path)
	t.Logf("journal: %d bytes, %d in use", fi.Size(), hwm)
	if fi.Size()/2 >= hwm {
		t.Fatalf("test setup: half the file (%d bytes) holds all the data (%d bytes)", fi.Size()/2, hwm)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	openFails(t, path, journal.ErrCorrupt)
}

func TestOpenLockedFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "journal.db")
	e1, err := durable.Open(path, quiet(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer e1.Close()
	type result struct {
		e   *durable.Engine
		err error
	}
	done := make(chan result, 1)
	go func() {
		e, err := durable.Open(path, quiet(&durable.Config{LockTimeout: 200 * time.Millisecond}))
		done <- result{e, err}
	}()
	r := recv(t, done, "Open of a locked file to give up")
	if r.err == nil {
		r.e.Close()
		t.Fatal("a second Open of one file succeeded while the first engine has it")
	}
	if !errors.Is(r.err, journal.ErrLocked) {
		t.Errorf("err = %v; want ErrLocked", r.err)
	}
	// The first engine is unharmed.
	wf := durable.Define("still-fine", func(ctx durable.Context, in int) (int, error) { return in, nil })
	if got, err := durable.Run(testCtx(t), e1, wf, "f-1", 3); err != nil || got != 3 {
		t.Errorf("first engine after the refused Open: %v, %v", got, err)
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new.db")
	e, err := durable.Open(path, quiet(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("journal file mode %v, want 0600", perm)
	}
	// No temporary file is left beside it.
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		t.Errorf("directory holds %v; want only new.db", names)
	}
}

// boltHighWater returns the bytes of path that bbolt uses: its high-water
// page mark times the page size.
func boltHighWater(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var size int64
	if err := db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return size
}
