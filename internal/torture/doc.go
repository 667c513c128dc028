// Package torture is a kill harness for the durable engine: a child
// process runs a seeded mixed workload on a bbolt journal while the parent
// kills it with SIGKILL at random moments and starts it again, many times.
// At the end the parent checks that nothing was lost or done twice:
//
//   - every run finished with the status and result that an uncrashed
//     execution gives, computed from the seed without executing anything
//     (the workflows are deterministic functions of their plans, and the
//     steps that fail do so by plan);
//   - every step executed at least once, with exactly the attempts its
//     plan gives, and a step executed again only after a kill that found
//     it in progress (at most once more per such kill); a step whose
//     result the workflow saw never executed again;
//   - every message sent from outside was sent once and received once;
//   - the journal is well formed (no record twice, at most one outcome per
//     position), journal.(*Bolt).Verify finds no problem, and bbolt's own
//     consistency check passes (in a child process: it can crash on a
//     damaged file).
//
// The workload mixes sequential steps, retries with backoff, sleeps (10 to
// 200 ms), journaled clock reads, messages from a sender goroutine,
// fan-out with durable.Go, child workflows, AwaitAny over futures, timers
// and receives, cancellations by the harness, run deadlines and
// ContinueAsNew (a few runs do their plan in two or three epochs). Work comes
// in rounds of Options.Runs runs: when a round completes the next begins
// on the same journal, until the kills are spent.
//
// The child engine keeps at most 8 waiting runs in memory
// (Config.MaxCachedRuns), so runs are also evicted and replayed while they
// wait, not only after kills.
//
// Sends from outside are made exactly once, as the checker requires, by
// the effect log: "send-begin" before durable.Send and "send-end" after;
// a kill between the two leaves the send in doubt, and the next child,
// before it opens the engine (the file is free then), looks for the
// message in the run's inbox and journal and logs what it found.
//
// The harness runs from a test (torture_test.go, re-executing the test
// binary) and from cmd/durable-torture (re-executing itself): both give
// [Run] a [Launcher] and call [Child] and [BboltCheck] in the child roles.
package torture
