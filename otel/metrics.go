package durableotel

import (
	"errors"

	"go.opentelemetry.io/otel/metric"
)

// Metric names. Durations are in seconds; attributes are the workflow
// name (AttrWorkflow) and, where it applies, the step (AttrStep), the
// outcome or status, and the resume reason.
const (
	MetricStepsStarted   = "durable.steps.started"   // counter: step attempts started
	MetricStepsCompleted = "durable.steps.completed" // counter: attempts that succeeded
	MetricStepsFailed    = "durable.steps.failed"    // counter: attempts that failed (retried or not)
	MetricStepDuration   = "durable.step.duration"   // histogram: attempt duration, by outcome
	MetricRetries        = "durable.step.retries"    // counter: retries scheduled
	MetricRunsStarted    = "durable.runs.started"    // counter: runs started (and new epochs)
	MetricRunsResumed    = "durable.runs.resumed"    // counter: incarnations that replayed, by reason
	MetricRunsEnded      = "durable.runs.ended"      // counter: runs that completed, failed, were canceled or parked, by status
	MetricReplayDuration = "durable.replay.duration" // histogram: time to replay a run's journal
	MetricCommitBatch    = "durable.commit.batch"    // histogram: commits per journal transaction (group commit)
	MetricCommitDuration = "durable.commit.duration" // histogram: journal transaction time, fsync included
	MetricCommitBytes    = "durable.commit.bytes"    // counter: bytes the journal wrote
	MetricRunsCached     = "durable.runs.cached"     // up-down counter: waiting runs held in memory (the run cache)
	MetricRunsEvicted    = "durable.runs.evicted"    // counter: runs evicted from the run cache
)

type instruments struct {
	stepsStarted, stepsCompleted, stepsFailed, retries metric.Int64Counter
	runsStarted, runsResumed, runsEnded, evicted       metric.Int64Counter
	commitBytes                                        metric.Int64Counter
	stepDuration, replay, commitDuration               metric.Float64Histogram
	commitBatch                                        metric.Int64Histogram
	cached                                             metric.Int64UpDownCounter
}

func (m *instruments) init(meter metric.Meter) error {
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	seconds := func(name, desc string, bounds ...float64) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		return h
	}
	m.stepsStarted = counter(MetricStepsStarted, "{attempt}", "Step attempts started")
	m.stepsCompleted = counter(MetricStepsCompleted, "{attempt}", "Step attempts that succeeded")
	m.stepsFailed = counter(MetricStepsFailed, "{attempt}", "Step attempts that failed")
	m.retries = counter(MetricRetries, "{retry}", "Step retries scheduled")
	m.runsStarted = counter(MetricRunsStarted, "{run}", "Runs started")
	m.runsResumed = counter(MetricRunsResumed, "{run}", "Run incarnations that replayed the journal")
	m.runsEnded = counter(MetricRunsEnded, "{run}", "Runs that ended, by status")
	m.evicted = counter(MetricRunsEvicted, "{run}", "Runs evicted from the run cache")
	m.commitBytes = counter(MetricCommitBytes, "By", "Bytes the journal wrote")
	fine := []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	m.stepDuration = seconds(MetricStepDuration, "Step attempt duration", fine...)
	m.replay = seconds(MetricReplayDuration, "Time to replay a run's journal", fine...)
	m.commitDuration = seconds(MetricCommitDuration, "Journal transaction time, fsync included", fine...)
	var err error
	m.commitBatch, err = meter.Int64Histogram(MetricCommitBatch, metric.WithUnit("{commit}"), metric.WithDescription("Commits per journal transaction"),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
	errs = append(errs, err)
	m.cached, err = meter.Int64UpDownCounter(MetricRunsCached, metric.WithUnit("{run}"), metric.WithDescription("Waiting runs held in memory"))
	errs = append(errs, err)
	return errors.Join(errs...)
}
