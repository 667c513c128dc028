// Package journal stores what the durable engine must not lose: runs, the
// ordered records of each run, messages waiting in each run's inbox, and the
// indexes over them (runs by status, runs by wake time).
//
// [Store] is the whole storage boundary, small and context-first so that a
// networked backend fits behind it without changing the engine. Two
// implementations ship here: [Memory] (tests; nothing survives the process)
// and [Bolt] (one bbolt file, fsynced group commit). Package
// [github.com/durable-go/durable/journal/journaltest] is the conformance
// suite every Store must pass unchanged.
//
// The journal knows nothing of workflows: record kinds, names and payloads
// are the engine's, stored as they are.
//
// # Several engines
//
// A store that several engines share implements the optional
// [Coordinator] interface as well: per-engine leases, claims of ready runs
// ([Run.Ready]), fenced commits ([Batch].Fence, [ErrNotOwner]) and notes
// that wake owners and claimers. [Memory] implements it (leases off unless
// [Memory.SetLease]); [Bolt] does not (one file, one engine). Every store
// keeps the idle mark ([Run].Idle) and lists ready runs
// ([Filter].ReadyAt), so that an engine that starts loads only the runs
// that can move now.
//
// # Format
//
// Keys are ordered so one run's records are contiguous and in position
// order: a bucket per run, keyed by big-endian (position, sequence). Values
// are msgpack with a one-byte format version and a CRC32C checked on every
// read, computed over the value's identity as well as its bytes, so damage in
// bbolt's data pages and values under the wrong key are both reported as
// [ErrCorrupt] naming the run and record. The file carries a format marker:
// a bbolt file of another program is refused with [ErrNotJournal]. Index
// entries are written in the same transaction as the runs they index.
//
// # Group commit
//
// [Bolt] coalesces concurrent commits into shared bbolt transactions
// without a committer goroutine, the way LevelDB's writer queue does: the
// first writer to find no commit under way commits in its own goroutine,
// taking along whatever queued meanwhile, and passes the lead to the first
// writer that queued during its transaction. A lone writer so pays no
// goroutine hand-off (a step of a sequential run costs what a bare bbolt
// Update costs), and concurrent writers still share one fsync.
//
// # Errors
//
// Every method documents the sentinel errors it returns; test them with
// errors.Is. A damaged file never makes a method panic.
package journal
