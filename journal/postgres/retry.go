package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Faults: when the server restarts or the network drops, the store keeps
// trying, with backoff (50 ms doubling to 2 s), logging each failure, until
// the server is back, the caller's context ends or the store is closed.
// Reads and coordination calls are simply repeated. A group commit whose
// connection failed before COMMIT reached the server is repeated from a
// fresh snapshot; one whose COMMIT may have reached it ("did it land?") is
// resolved first: the store noted the transaction's id (txid_current,
// which a one-round-trip commit has the server flush before it writes) and
// asks the server, once it can reach it again, with txid_status whether
// that transaction committed. So a commit is never applied twice and
// never reported failed when it landed, and the engine never runs a step
// again because of a lost reply.

// transient reports whether err is about reaching the server (a lost or
// refused connection, a server shutting down or starting up, a
// serialization failure or deadlock): worth retrying.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "40001", "40P01", "53300": // shutdown, crash, starting, serialization, deadlock, too many connections
			return true
		}
		return strings.HasPrefix(pe.Code, "08") // connection exception
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed")
}

// retry calls fn until it succeeds or fails for good: an error that is not
// transient, ctx's end, or the store's closing. It wraps the final error
// with op.
func (s *Store) retry(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	return wrap(op, s.repeat(ctx, op, fn))
}

// repeat is retry for calls whose own errors (no such run, damaged data,
// a transient error of the last attempt) are already worded, the reads
// and Purge: it returns fn's last error as it is.
func (s *Store) repeat(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	var bo backoff
	for {
		err := fn(ctx)
		if !transient(err) || ctx.Err() != nil {
			return err
		}
		s.opts.Logger.Warn("postgres: cannot reach the server; retrying", "op", op, "err", err)
		if !bo.sleep(ctx, s.life.Done()) {
			return err
		}
	}
}
