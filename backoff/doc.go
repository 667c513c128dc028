// Package backoff computes how long to wait between attempts.
//
// It is pure delay math: a [Backoff] maps the number of the attempt that
// just failed to a wait. Nothing here starts goroutines, reads a clock or
// sleeps; the caller (package retry, or the durable engine's timers) does
// the waiting.
//
// Attempts are numbered from 1: Delay(1) is the wait between attempt 1 and
// attempt 2. An attempt number of zero or less is treated as 1, and a
// delay is never negative.
//
// Two implementations are provided:
//
//   - [Constant] waits the same duration after every attempt.
//   - [Exponential] waits Initial × Multiplier^(attempt-1), capped at Max,
//     optionally randomized with a [Jitter]. Its zero value is usable:
//     1s, 2s, 4s, … capped at 1 minute, with [NoJitter].
//
// # Determinism
//
// [Constant] and [Exponential] with [NoJitter] are deterministic: the same
// attempt always gives the same delay. With [FullJitter] or [EqualJitter]
// the delay depends on the random source, so a durable engine must record
// a jittered delay (for example as a timer's deadline) rather than compute
// it again on replay.
//
// # Crash recovery
//
// There is no state to recover. A Backoff is a value; after a restart the
// same configuration gives the same (unjittered) delays.
//
// # Testing
//
// Inject [Exponential].Rand to make jittered delays exact in tests: a
// source returning 0 gives the smallest delay a [Jitter] allows, and one
// returning a value just below 1 gives the largest.
package backoff
