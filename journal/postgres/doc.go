// Package postgres is a [journal.Store] in PostgreSQL, through pgx v5: the
// journal of durable runs in a database that several processes share.
//
//	store, err := postgres.Open(ctx, "postgres://user@host/db", nil)
//	if err != nil { ... }
//	defer store.Close()
//	e, err := durable.New(store, &durable.Config{Workflows: ...})
//
// It lives in a module of its own, so applications that keep the embedded
// bbolt journal never depend on pgx.
//
// # Schema
//
// [Open] creates the tables in [Options.Schema] ("durable" by default) and
// migrates them when a newer version of this package needs more; the
// schema's version is kept in its meta table. Processes that start at the
// same time take turns under an advisory lock, so one of them migrates and
// the others find the work done. Code older than the schema refuses it
// with [journal.ErrVersion]. Two schemas in one database are two
// independent journals (the tests use one per test).
//
// Rows hold the journal package's own encodings (journal.EncodeRun,
// journal.EncodeRecord, journal.EncodeMessage): the same bytes and CRC32C
// checksums as in a bbolt file, so a row damaged in the database reads as
// [journal.ErrCorrupt] naming the run and record. Identifiers are bytea,
// compared and sorted as bytes.
//
// # Group commit
//
// Commits of many runs in one process share one PostgreSQL transaction,
// as they share one bbolt transaction in journal.Bolt: the first
// committing goroutine leads, and takes along whatever commits queued
// while the previous transaction ran (up to [Options.MaxBatch]). A group's
// transaction locks the runs it touches (in id order, so groups of
// different processes never deadlock), reads them with the records and
// messages the batch rules ask about in one round trip, applies the rules
// in Go (journal.ApplyBatch: the same rules as every store), and writes the
// result with a few multi-row statements. A commit that breaks the rules
// fails alone; the others commit. When the store has seen every run of
// the group before (it keeps the rows its own transactions read and
// wrote, with their xmin), the reads are skipped and the transaction is
// one round trip: a guard statement locks the runs and fails it unless
// they are unchanged, then the writes (see runcache.go, fastcommit.go).
//
// # Testing
//
// The tests need a server: DURABLE_POSTGRES_URL names it. Without it they
// skip, saying how to start one (scripts/postgres start, at the repository
// root, runs a throwaway server from the local PostgreSQL binaries); with
// DURABLE_REQUIRE_POSTGRES=1, as in CI, they fail instead.
package postgres
