// Package retry decides whether a failed attempt is tried again, and when.
//
// A [Policy] answers one question, [Policy.Next]: attempt n failed with
// err; retry, and after what delay? It never sleeps, so the durable engine
// can turn the answer into a journaled timer that survives a crash. For
// callers outside a workflow, [Do] and [DoValue] run a function in an
// ordinary loop that waits in memory.
//
// # Defaults
//
// The zero Policy is usable. Its fields default as follows:
//
//   - MaxAttempts: 3 attempts in all, the first included. A negative
//     value means no limit.
//   - Backoff: backoff.Exponential{Initial: time.Second, Max: time.Minute,
//     Multiplier: 2, Jitter: backoff.EqualJitter}, which waits about
//     0.5–1s, then 1–2s, and so on up to 30s–1m.
//   - Retryable: every error is retried except those marked with
//     [Permanent].
//   - Timeout: no limit on a single attempt.
//
// # Errors that steer retries
//
// A step marks an error that no retry can fix with [Permanent], and one
// that carries a server's "retry no sooner than" hint (an HTTP 429 or 503
// Retry-After) with [After]. Both wrap the error without changing its
// message, and both are found anywhere in the chain, so they survive
// further wrapping with fmt.Errorf and %w.
//
// # Determinism
//
// [Policy.Next] is a pure function of its arguments except for backoff
// jitter. A durable engine must therefore record the delay it computed
// (for example as a timer's deadline) rather than call Next again on
// replay.
//
// # Crash recovery
//
// A Policy holds no state: the attempt number is the caller's, so a
// durable engine that journals each attempt resumes counting where it
// stopped. Errors read back from a journal keep their message but not
// their Go type, so [IsPermanent] and [RetryAfter] cannot see marks on
// them: call [Policy.Next] with the live error, before it is recorded.
//
// # Testing
//
// Use [backoff.Constant] or a [backoff.Exponential] with
// [backoff.NoJitter] for exact delays. [Do] uses ordinary timers and
// contexts, so tests can run it inside a testing/synctest bubble, where
// its waits take no real time.
package retry
