package postgres

import (
	"fmt"
	"log/slog"
	"time"
)

// Options configure [Open]. The zero value (or a nil *Options) means the
// documented defaults.
type Options struct {
	// Schema is the PostgreSQL schema that holds the journal's tables;
	// two schemas in one database are two independent journals. Open
	// creates it if it does not exist. Defaults to "durable".
	Schema string

	// LeaseTimeout is how long after an engine's last heartbeat other
	// engines may take over its runs. Shorter means a dead process's runs
	// move on sooner; longer tolerates longer pauses (GC, a stalled VM)
	// of a live one. Defaults to 5s.
	LeaseTimeout time.Duration

	// PollInterval is how often an engine looks for claimable runs when
	// no note asked it to: how long a lost note, or a dead engine's runs
	// after LeaseTimeout, wait at most. Defaults to 1s.
	PollInterval time.Duration

	// MaxConns is the size of the connection pool. Defaults to 8.
	MaxConns int32

	// MaxBatch is the most commits (of any runs) coalesced into one
	// PostgreSQL transaction. Defaults to 512.
	MaxBatch int

	// Logger receives what the store reports on its own: lost
	// connections and their retries. Defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults, as the field docs of [Options] state them.
const (
	DefaultSchema       = "durable"
	DefaultLeaseTimeout = 5 * time.Second
	DefaultPollInterval = time.Second
	defaultMaxConns     = 8
	defaultMaxBatch     = 512
)

// withDefaults returns a copy of o (nil: the zero Options) with defaults
// filled in, or an error naming the first bad field.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Schema == "" {
		c.Schema = DefaultSchema
	}
	if len(c.Schema) > 63 {
		return c, fmt.Errorf("postgres: Options.Schema %q is longer than PostgreSQL's 63 bytes", c.Schema)
	}
	switch {
	case c.LeaseTimeout == 0:
		c.LeaseTimeout = DefaultLeaseTimeout
	case c.LeaseTimeout < 100*time.Millisecond:
		return c, fmt.Errorf("postgres: Options.LeaseTimeout %v is shorter than 100ms", c.LeaseTimeout)
	}
	switch {
	case c.PollInterval == 0:
		c.PollInterval = DefaultPollInterval
	case c.PollInterval < 10*time.Millisecond:
		return c, fmt.Errorf("postgres: Options.PollInterval %v is shorter than 10ms", c.PollInterval)
	}
	switch {
	case c.MaxConns == 0:
		c.MaxConns = defaultMaxConns
	case c.MaxConns < 2:
		return c, fmt.Errorf("postgres: Options.MaxConns %d: want at least 2", c.MaxConns)
	}
	switch {
	case c.MaxBatch == 0:
		c.MaxBatch = defaultMaxBatch
	case c.MaxBatch < 0:
		return c, fmt.Errorf("postgres: Options.MaxBatch %d is negative", c.MaxBatch)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
