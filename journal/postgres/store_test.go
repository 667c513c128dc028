package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/journaltest"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// open opens a store on a fresh schema that is dropped when t ends.
func open(t *testing.T) (*postgres.Store, string, string) {
	t.Helper()
	return openWith(t, &postgres.Options{})
}

// openWith is open with options (whose Schema it sets).
func openWith(t *testing.T, o *postgres.Options) (*postgres.Store, string, string) {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	o.Schema = schema
	s, err := postgres.Open(t.Context(), url, o)
	if err != nil {
		t.Fatalf("Open(schema %s) = %v, want nil", schema, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close = %v, want nil", err)
		}
	})
	return s, url, schema
}

func TestConformance(t *testing.T) {
	t.Parallel()
	journaltest.Run(t, func(t *testing.T) journal.Store {
		// The longest lease Coordinator/LeaseExpiry accepts: the suite
		// heartbeats by hand, and a loaded machine is slow.
		s, _, _ := openWith(t, &postgres.Options{LeaseTimeout: 3 * time.Second})
		return s
	})
}

// TestOpenConcurrent opens one new schema from many goroutines at once,
// each with its own pool (as many processes would): each Open succeeds and
// the schema is created once, at the current version.
func TestOpenConcurrent(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	const n = 8
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(t.Context(), url, &postgres.Options{Schema: schema, MaxConns: 2})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d of %d at once = %v, want nil", i, n, err)
		}
		defer stores[i].Close()
	}
	// Every store sees what one wrote.
	if _, _, err := stores[0].CreateRun(t.Context(), journal.Run{ID: "r", Workflow: "wf", Status: journal.StatusRunning}); err != nil {
		t.Fatalf("CreateRun = %v", err)
	}
	for i, s := range stores {
		if _, err := s.GetRun(t.Context(), "r"); err != nil {
			t.Fatalf("store #%d: GetRun(r) = %v, want the run", i, err)
		}
	}
}

// TestSchemasIsolate: two schemas in one database are two journals.
func TestSchemasIsolate(t *testing.T) {
	t.Parallel()
	a, url, _ := open(t)
	bs := pgtest.Schema(t, url)
	b, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: bs})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, _, err := a.CreateRun(t.Context(), journal.Run{ID: "r", Workflow: "wf", Status: journal.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetRun(t.Context(), "r"); !errors.Is(err, journal.ErrNotFound) {
		t.Fatalf("GetRun(r) in another schema = %v, want ErrNotFound", err)
	}
}

// TestNewerSchemaRefused: a schema migrated by newer code is refused with
// journal.ErrVersion, and left as it is.
func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	_, url, schema := open(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), fmt.Sprintf(`UPDATE %s.meta SET value = value + 1 WHERE key = 'version'`, pgx.Identifier{schema}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema})
	if !errors.Is(err, journal.ErrVersion) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open on a schema of a newer version = %v, want ErrVersion", err)
	}
}

// TestCorruptValue: a row whose value was damaged in the database reads
// as journal.ErrCorrupt naming the run, as in a bbolt file.
func TestCorruptValue(t *testing.T) {
	t.Parallel()
	s, url, schema := open(t)
	ctx := t.Context()
	if _, _, err := s.CreateRun(ctx, journal.Run{ID: "r", Workflow: "wf", Status: journal.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &journal.Batch{Append: []journal.Append{{RunID: "r", Record: journal.Record{Pos: 0, Data: []byte("hello")}}}}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, fmt.Sprintf(`UPDATE %s.records SET value = overlay(value placing '\xff'::bytea from length(value))`, pgx.Identifier{schema}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	_, err = s.Records(ctx, "r")
	var ce *journal.CorruptError
	if !errors.As(err, &ce) || ce.RunID != "r" {
		t.Fatalf("Records of a damaged record = %v, want a CorruptError naming run r", err)
	}
}

func TestOptionsInvalid(t *testing.T) {
	t.Parallel()
	for _, o := range []postgres.Options{{MaxConns: 1}, {MaxBatch: -1}, {LeaseTimeout: 1}} {
		if s, err := postgres.Open(t.Context(), "postgres://127.0.0.1:1/none", &o); err == nil {
			s.Close()
			t.Errorf("Open with %+v = nil error, want one naming the field", o)
		}
	}
}

// TestReportCommits: the CommitReporter hears of each group transaction,
// with the calls it applied.
func TestReportCommits(t *testing.T) {
	t.Parallel()
	s, _, _ := open(t)
	var mu sync.Mutex
	var got journal.CommitStats
	stop := s.ReportCommits(func(cs journal.CommitStats) {
		mu.Lock()
		got.Commits += cs.Commits
		got.Operations += cs.Operations
		got.Bytes += cs.Bytes
		mu.Unlock()
	})
	ctx := t.Context()
	if _, _, err := s.CreateRun(ctx, journal.Run{ID: "r", Workflow: "wf", Status: journal.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &journal.Batch{Append: []journal.Append{{RunID: "r", Record: journal.Record{Data: []byte("x")}}},
		Send: []journal.Message{{RunID: "r", Channel: "c"}}}); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := s.Commit(ctx, &journal.Batch{Append: []journal.Append{{RunID: "r", Record: journal.Record{Pos: 1}}}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Commits != 2 || got.Operations != 3 || got.Bytes == 0 {
		t.Fatalf("reported %+v, want 2 commits of 3 operations and some bytes (none after stop)", got)
	}
}
