package postgres_test

import (
	"log/slog"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/enginetest"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
)

// TestEngineSuite runs the engine's behaviour suite (internal/enginetest,
// the one the root package runs on memory and bolt) on PostgreSQL, in real
// time: each test has a schema of its own; a restart opens a new store on
// it (a new process, as far as the engine can tell), and the shared tests
// open a second store on it for a second engine.
func TestEngineSuite(t *testing.T) {
	t.Parallel()
	suite := func(t *testing.T, engine func(*durable.Config)) {
		enginetest.Run(t, enginetest.Config{Engine: engine, Journal: func(t *testing.T) enginetest.Journal {
			url := pgtest.URL(t)
			schema := pgtest.Schema(t, url)
			open := func() *postgres.Store {
				s, err := postgres.Open(t.Context(), url, &postgres.Options{Schema: schema, MaxConns: 4,
					Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatalf("postgres.Open(schema %s): %v", schema, err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			var cur *postgres.Store
			return enginetest.Journal{
				Open: func() journal.Store {
					if cur != nil {
						if err := cur.Close(); err != nil {
							t.Fatalf("close the store: %v", err)
						}
					}
					cur = open()
					return cur
				},
				Share: func() journal.Store { return open() },
			}
		}})
	}
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		suite(t, nil)
	})
	t.Run("cache1", func(t *testing.T) {
		t.Parallel()
		suite(t, func(cfg *durable.Config) { cfg.MaxCachedRuns = 1 })
	})
}
