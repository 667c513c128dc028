// Package durableotel traces and measures durable workflows with
// OpenTelemetry: set an [Observer] as durable.Config.Observer.
//
//	obs, err := durableotel.New(nil) // the global tracer and meter providers
//	e, err := durable.Open("app.journal", &durable.Config{Workflows: wfs, Observer: obs})
//
// It lives in a module of its own so that the durable module keeps its
// few dependencies.
//
// # Spans
//
// Start journals the trace context of the caller's span (the context
// given to Start or Run) with the run; with no span there, it makes a root
// span "durable.start <workflow>" and journals that. Each incarnation of
// the run (the process that starts it, and every process that resumes it
// after a crash, a restart or a claim from a shared journal) makes a
// "durable.run <workflow>" span under that journaled context: the caller's
// span is the parent of every run span, and the run stays one trace across
// crashes and processes. A resumed incarnation's span carries a
// "resumed" event saying where (host.name, process.pid, the journal
// position and the records replayed) and a "replayed" event when replay
// ends. Each step attempt is a "durable.step <name>" span under the run's
// span, with an error status when it fails; the step function's context
// carries it, so instrumented HTTP and SQL clients nest their spans under
// it. Steps answered from the journal on replay make no span. A child
// run's spans are children of its parent's run span, in its trace.
//
// An incarnation's span ends when the run finishes or parks, when the
// engine closes, and when the run is evicted from the run cache (it waits
// and the cache is full); its next incarnation, when the wait is over, is
// a new span with a "resumed" event (reason "reload"). A Start of a run
// that exists journals nothing: the run keeps the trace context journaled
// when it was created. Sampling follows the
// journaled context: a run whose start span was not sampled records no
// spans, in any process.
//
// A process killed with SIGKILL cannot end its spans: the spans of its
// run incarnation and of steps in flight are never exported, and the
// spans it did export (ended steps) name a parent that no exporter
// received. The next incarnation's span is in the same trace, under the
// same parent.
//
// # Metrics
//
// Counters of step attempts started, completed and failed, retries, runs
// started, resumed and ended by status, and evictions; histograms of step
// duration, replay time, commit batch size (commits per journal
// transaction) and commit latency; the bytes the journal wrote; and the
// number of waiting runs held in memory. See the Metric* constants.
package durableotel
