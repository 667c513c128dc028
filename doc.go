// Package durable runs Go functions as durable workflows: every step's
// result is journaled in a local bbolt file (fsynced) before the workflow
// moves on, and after a crash or restart the engine re-runs the function
// and replays the recorded results instead of executing those steps again.
// There is no server, queue or database to deploy.
//
//	var greet = durable.Define("greet", func(ctx durable.Context, name string) (string, error) {
//		msg, err := durable.Step(ctx, "compose", func(ctx context.Context) (string, error) {
//			return "hello " + name, nil
//		})
//		if err != nil {
//			return "", err
//		}
//		return durable.Step(ctx, "send", func(ctx context.Context) (string, error) {
//			return msg, mail.Send(ctx, name, msg)
//		})
//	})
//
//	e, err := durable.Open("app.journal", &durable.Config{Workflows: []durable.Definition{greet}})
//	...
//	out, err := durable.Run(ctx, e, greet, "greet-bob", "bob")
//
// # Guarantees
//
// A step's result (its value, or its final error) is committed and
// fsynced before [Step] returns to the workflow, and a recorded step is
// never executed again: exactly-once recording. A step interrupted by a
// crash before its commit runs again when the run resumes: at-least-once
// execution. Give external systems the step's idempotency key
// ([StepInfo].IdempotencyKey: the same on every attempt and restart) to
// make the effect exactly-once too, or mark the step [AtMostOnce].
//
// Each durable operation ([Step], [Go], [Sleep], [Receive], [StartChild],
// [Now], [AwaitAny], ...) takes the next position in the run's journal, in
// the order the workflow calls them. [Go] takes its position when called,
// so the order in which concurrent steps finish never changes replay.
//
// # Determinism
//
// On resume the workflow function runs again from the top, and every
// durable call must meet the same kind and name at its position as the
// first time. So workflow code must be deterministic: do I/O, clock reads
// and randomness inside steps, and branch only on inputs and on what
// durable calls returned. These break replay:
//
//	if time.Now().Hour() < 12 { ... }        // use durable.Now(ctx)
//	if rand.Intn(2) == 0 { ... }             // draw it inside a Step
//	resp, _ := http.Get(url)                 // do it inside a Step
//	for k := range m { durable.Step(ctx, k, ...) } // map order is random: sort the keys
//	go func() { durable.Step(ctx, ...) }()   // use durable.Go
//	if cfg.FeatureFlag { durable.Step(...) } // read flags inside a Step
//
// When replay meets something else than the journal holds (a step renamed,
// reordered, added or removed before the point the run reached), the run
// stops with a [*NondeterminismError] (matching [ErrNondeterministic])
// naming the run, the position, what was recorded, what the code called
// and where. The run is parked, not failed: its journal is kept, other runs
// go on, and it resumes when an engine with compatible code opens the
// journal. The same holds for a run whose workflow is not registered, or
// whose recorded payload no longer decodes.
//
// To change code that runs have passed already, branch on [Version]: runs
// that passed the point before the change keep the old path
// ([DefaultVersion]), runs that reach it later take the new one.
//
// # Crash recovery
//
// [Open] and [New] list the unfinished runs that can move now and resume
// those of the registered workflows in the background: each is replayed
// up to where it was (steps answered from the journal, sleeps with their
// recorded wake times, messages already received) and continues from
// there. A run that sleeps or waits for a message is marked idle in the
// journal and is not loaded until its timer falls due or a message or a
// cancel comes, so a journal of many waiting runs opens fast. A [Start]
// of a run that is being recovered attaches to it: one execution, never
// two. [Engine.Close] stops runs without failing them: steps in flight see
// their contexts canceled, nothing they return is recorded, and they run
// again on the next Open ([AtMostOnce] steps return a
// [*StepInterruptedError] instead of running again).
//
// # Retries
//
// A step that fails is retried by its policy ([WithRetry], else
// Config.DefaultRetry: 3 attempts, exponential backoff from 1s with equal
// jitter, capped at 1 minute). Each failed attempt, its error and the time
// of the next attempt are journaled, so a restart during a backoff wait
// resumes at the right attempt and waits only what remains. A
// retry.Permanent error stops at once; retry.After sets a minimum wait (an
// HTTP Retry-After). A panicking step is a failed attempt whose error
// carries the stack. The final failure is a [*StepError]. [WithLimit] binds
// a step to a shared rate and concurrency limit (Config.Limits); waiting
// for a token is not an attempt.
//
// # Errors
//
// Errors that cross the journal (a step's error as the workflow sees it, a
// run's error as [Handle.Result] returns it) come back with their message
// and Go type name as a [*RecordedError], or as this package's typed
// errors ([*StepError], [*ChildError], [*PanicError], ...). errors.Is
// identity of your own error values does not survive, so the workflow sees
// the same error live and on replay; this package's sentinels do survive.
//
// # Time
//
// [Sleep] and [SleepUntil] journal their wake-up time before waiting; one
// timer goroutine per engine wakes the runs that are due. A restart neither
// loses nor restarts a timer, and a timer that fell due while the process
// was down fires as soon as the run is resumed at Open. [Now] is a
// journaled clock read for workflow code. Config.Clock replaces the clock
// (tests can move it forwards and backwards: timers fire once, never early).
//
// # Schedules
//
// [Engine.CreateSchedule] starts a run of a workflow at every slot of a
// cron expression (in a time zone) or a fixed interval, with jitter, an
// [OverlapPolicy] and a [CatchUpPolicy]. A firing's run id is
// "<name>@<slot>", so a slot starts one run however often the engines
// restart. Each schedule is a run of the internal workflow
// "durable.schedule" (id "schedule:<name>"), which every engine registers
// (on a shared store, every engine with workflows); the control calls
// ([Engine.PauseSchedule], ...) are messages to it, and
// [Engine.GetSchedule] reads the state it publishes with [SetEvent].
//
// # Messages
//
// [Send] stores a message in the run's inbox durably before it returns,
// whether or not the run is waiting, and even if this engine does not have
// the run's workflow. [Receive] takes the oldest message on a channel and
// records it at its journal position in the same commit that removes it
// from the inbox, so each message is received exactly once.
// [ReceiveTimeout] gives up after a journaled deadline with [ErrTimeout].
//
// # Cancellation
//
// [Engine.Cancel] journals the request. Running steps see their contexts
// canceled; the durable operation the workflow is in (or calls next)
// returns an error matching [ErrCanceled], and from that position on the
// Context is Done. Where cancellation reached the workflow is journaled, so
// replay takes the same path. The run ends [StatusCanceled] if the
// workflow returns that error. Children are canceled with their parent
// (unless [Detached]). For cleanup after cancellation use [WithoutCancel].
// A run deadline ([WithDeadline], [WithRunTimeout]) cancels the run with
// [ErrDeadlineExceeded] when it passes, across restarts.
//
// # Cancel scopes
//
// Workflow code cancels part of itself, not the run: [WithCancel] returns
// a Context and a cancel function (Temporal's workflow.WithCancel); cancel
// stops the steps started with [Go], the child runs and the timers begun
// under that Context (or Contexts made from it), and makes later
// operations on it return an error matching [ErrCanceled]. [Future.Cancel]
// and [Timer.Cancel] cancel one future or timer, such as those that lost
// an [AwaitAny]. A canceled step's context is canceled and its outcome
// recorded as canceled (a step that returns a value anyway keeps it); a
// canceled child ends [StatusCanceled] through its own [Engine.Cancel]; a
// canceled timer is ready and [Timer.Err] says so. Canceling what already
// finished changes nothing. The run's own cancellation still reaches
// everything under a scope, except under [WithoutCancel].
//
// A cancel that can reach something still running is journaled as an
// operation (History shows it as kind "cancel", named "scope N" or
// "position N"), with its time: replay takes the same path whatever
// finished first, a timer counts as canceled if the cancel came before
// it fired, and steps without an outcome are scheduled only once the
// replay is over, so a step canceled before a crash is not run again
// after it. A scope under which only operations that return before the
// workflow goes on ran (Step, Sleep, Receive) journals nothing: `defer
// cancel()` costs nothing there.
//
// # Testing
//
// New(journal.NewMemory(), cfg) gives an engine with no file. It works
// inside a testing/synctest bubble, where time is virtual: a workflow that
// sleeps for 30 days finishes in milliseconds, and Close leaves no
// goroutine behind. Closing the engine and opening another on the same
// store simulates a crash and a resume. Package durabletest has helpers
// for both.
//
// # Long-lived runs and retention
//
// A run's journal is capped at Config.MaxHistory operations (default
// 100,000) per epoch; a workflow that loops forever calls [ContinueAsNew]
// to start afresh under the same id, and [WorkflowInfoFrom] tells it how
// long its history is. Finished runs, and the journals of ended epochs, are deleted
// after Config.Retention (default 7 days); [Engine.Purge] does it on
// demand. Waiting runs beyond Config.MaxCachedRuns (default 4,096) give up
// their goroutine and are replayed when what they wait for arrives.
//
// # Observability
//
// Config.Observer receives the engine's events: runs started, resumed
// (where, after how many records), replayed, finished, parked or stopped;
// each step attempt (its duration and error, or that replay answered it);
// retries; waits; and the journal's commit batches. Implementations embed
// [BaseObserver]. What [Observer].InjectRun returns when a run is created
// is journaled with it and given back in every event of the run, in any
// process: the otel module keeps the run's trace context there, so a run
// is one trace across crashes and processes. [Logger] gives workflow code
// a *slog.Logger that carries run_id, workflow and position, and is
// silent while the run replays.
//
// # Several engines
//
// With a store that implements journal.Coordinator (journal.Memory, the
// Postgres store of journal/postgres), engines in one process or many
// share the runs. Each engine registers with a lease it renews (one
// heartbeat per engine), claims ready runs of its workflows up to
// Config.MaxRuns, and fences every commit of a run with the token it
// claimed it with: a commit of an engine that lost the run records
// nothing, and that engine drops the run. A run is executed where it was
// started; children, and idle runs that wake after their engine let them
// go, go to any engine with the workflow. A dead engine's runs are
// claimed by the others after the store's lease timeout plus a poll; a
// closing engine releases its runs at once. [Send], [Engine.Cancel] and
// [Engine.Get] work from any engine, including one with no workflows.
// Without a coordinator (bbolt), none of this costs anything: no
// heartbeat, no claim, no fence.
//
// # Choices
//
// Where the design leaves a question open, this package answers it so:
//
//   - [Start] registers the workflow it is given if Config.Workflows did not
//     list it, and resumes that workflow's unfinished runs. Two different
//     definitions of one name in one engine are an error.
//   - An engine never touches runs of workflows it does not have: they
//     stay running and wait for an engine that has the workflow
//     ([RunInfo].Waiting says so).
//   - [Handle.Result] of a parked run returns a [*ParkedError] at once
//     rather than waiting for code that this engine does not have.
//   - Canceling a canceled run is a no-op; canceling a completed or failed
//     run is [ErrFinished]; the run ends [StatusCanceled] only if the
//     workflow returns the cancellation (a workflow that handles it and
//     returns a value completes).
//   - A step that returns a value although its run was canceled keeps the
//     value (its effect happened); the cancellation reaches the workflow
//     at that step all the same.
//   - A step's value of a plain type (numbers, strings, arrays and structs
//     of them) is returned as the step function returned it; other types
//     come back through the journal's encoding, as replay gives them, and
//     errors always do (see [RecordedError]).
//   - [Future.Get] takes no journal position and waits for its step or
//     child whatever happens to the run; [AwaitAny] and [AwaitAll] take
//     one and observe cancellation.
//   - A cancel scope's cancel, or [Future.Cancel], cancels children started
//     [Detached] too: Detached is about the run's cancellation, and the
//     code asked for this one. A canceled timer is ready (it wins an
//     [AwaitAny]), as a canceled timer future is in Temporal.
//   - A run id can be started again once retention deleted its run.
//   - [Engine.Close] waits Config.ShutdownTimeout (default 5 s) for steps
//     that ignore their context, then abandons them unrecorded.
package durable
