// Package postgrestest tests the otel module with the PostgreSQL journal:
// a run's trace continues when another engine, on another connection,
// takes the run over. It is a module of its own so that neither the otel
// module nor journal/postgres depends on the other.
package postgrestest
