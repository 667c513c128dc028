package durableotel

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/durable-go/durable"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/durable-go/durable/otel"

// Attribute keys of spans and metrics.
const (
	AttrRunID        = attribute.Key("durable.run.id")
	AttrWorkflow     = attribute.Key("durable.workflow.name")
	AttrParentRunID  = attribute.Key("durable.parent.run.id")
	AttrEpoch        = attribute.Key("durable.run.epoch")
	AttrStatus       = attribute.Key("durable.run.status")
	AttrStep         = attribute.Key("durable.step.name")
	AttrPosition     = attribute.Key("durable.position")
	AttrAttempt      = attribute.Key("durable.step.attempt")
	AttrIdempotency  = attribute.Key("durable.step.idempotency_key")
	AttrReason       = attribute.Key("durable.reason")
	AttrRecords      = attribute.Key("durable.replay.records")
	AttrReplaySecs   = attribute.Key("durable.replay.duration")
	AttrNextAttempt  = attribute.Key("durable.retry.next_at")
	AttrOutcome      = attribute.Key("durable.step.outcome")
	AttrWaitKind     = attribute.Key("durable.wait.kind")
	AttrResumeReason = attribute.Key("durable.resume.reason")
)

// Options configures [New]. The zero value, or nil, means the defaults.
type Options struct {
	// TracerProvider makes the spans. Defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the instruments. Defaults to
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Propagator writes the run's trace context into the journal and
	// reads it back, possibly in another process. Defaults to W3C Trace
	// Context and Baggage (not the global propagator: what is journaled
	// must read back in every process that may resume the run).
	Propagator propagation.TextMapPropagator
}

// Observer is a durable.Observer that makes OpenTelemetry spans and
// metrics. Make one with [New] and set it as durable.Config.Observer. It
// is safe for concurrent use, and one Observer may serve several engines.
type Observer struct {
	durable.BaseObserver
	opts   sync.Map // optKey -> metric.MeasurementOption: attribute sets made once
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	m      instruments
	where  []attribute.KeyValue // this process: host.name, process.pid
}

var _ durable.Observer = (*Observer)(nil)

// New returns an Observer on the providers of opts (nil: the globals).
func New(opts *Options) (*Observer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	if o.Propagator == nil {
		o.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	ob := &Observer{
		tracer: o.TracerProvider.Tracer(ScopeName),
		prop:   o.Propagator,
		where:  []attribute.KeyValue{semconv.ProcessPID(os.Getpid())},
	}
	if host, err := os.Hostname(); err == nil {
		ob.where = append(ob.where, semconv.HostName(host))
	}
	if err := ob.m.init(o.MeterProvider.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("durableotel: instruments: %w", err)
	}
	return ob, nil
}

// optKey names a set of metric attributes: the workflow, and a second
// attribute (the step, a status or a reason) or none.
type optKey struct {
	workflow string
	key      attribute.Key
	value    string
	outcome  string // AttrOutcome, for step durations
}

// attrs returns the metric option for k, made once.
func (o *Observer) attrs(k optKey) metric.MeasurementOption {
	if v, ok := o.opts.Load(k); ok {
		return v.(metric.MeasurementOption)
	}
	as := []attribute.KeyValue{AttrWorkflow.String(k.workflow)}
	if k.key != "" {
		as = append(as, k.key.String(k.value))
	}
	if k.outcome != "" {
		as = append(as, AttrOutcome.String(k.outcome))
	}
	v, _ := o.opts.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(as...)))
	return v.(metric.MeasurementOption)
}

// runAttrs are the attributes of a run's spans.
func runAttrs(ev durable.RunEvent) []attribute.KeyValue {
	as := []attribute.KeyValue{AttrRunID.String(ev.RunID), AttrWorkflow.String(ev.Workflow)}
	if ev.Parent != "" {
		as = append(as, AttrParentRunID.String(ev.Parent))
	}
	if ev.Epoch > 0 {
		as = append(as, AttrEpoch.Int(ev.Epoch))
	}
	return as
}

// InjectRun implements durable.Observer: it journals the trace context of
// ctx (the caller's span; for a child run, its parent's run span), which
// is the parent of the run's spans in every process. With no span in ctx
// it makes a root span, "durable.start <workflow>", ended at once, and
// journals that.
func (o *Observer) InjectRun(ctx context.Context, ev durable.RunEvent) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		var span trace.Span
		ctx, span = o.tracer.Start(ctx, "durable.start "+ev.Workflow,
			trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(runAttrs(ev)...))
		defer span.End()
	}
	carrier := propagation.MapCarrier{}
	o.prop.Inject(ctx, carrier)
	return carrier
}

// runSpan starts the span of one incarnation of the run, under the
// journaled context.
func (o *Observer) runSpan(ev durable.RunEvent, opts ...trace.SpanStartOption) context.Context {
	ctx := o.prop.Extract(context.Background(), propagation.MapCarrier(ev.Meta))
	opts = append(opts, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(runAttrs(ev)...))
	ctx, _ = o.tracer.Start(ctx, "durable.run "+ev.Workflow, opts...)
	return ctx
}

// RunStarted implements durable.Observer: the run's span begins.
func (o *Observer) RunStarted(_ context.Context, ev durable.RunEvent) context.Context {
	o.m.runsStarted.Add(context.Background(), 1, o.attrs(optKey{workflow: ev.Workflow}))
	return o.runSpan(ev)
}

// RunResumed implements durable.Observer: a new span for the run, in the
// same trace as its first one, with a "resumed" event that says where
// (host, process, journal position) and why.
func (o *Observer) RunResumed(_ context.Context, ev durable.RunEvent) context.Context {
	o.m.runsResumed.Add(context.Background(), 1, o.attrs(optKey{workflow: ev.Workflow, key: AttrResumeReason, value: ev.Reason}))
	ctx := o.runSpan(ev)
	as := append([]attribute.KeyValue{AttrResumeReason.String(ev.Reason), AttrPosition.Int(ev.Position), AttrRecords.Int(ev.Records)}, o.where...)
	trace.SpanFromContext(ctx).AddEvent("resumed", trace.WithAttributes(as...))
	return ctx
}

// RunReplayed implements durable.Observer.
func (o *Observer) RunReplayed(ctx context.Context, ev durable.RunEvent) {
	o.m.replay.Record(context.Background(), ev.Replay.Seconds(), o.attrs(optKey{workflow: ev.Workflow}))
	trace.SpanFromContext(ctx).AddEvent("replayed", trace.WithAttributes(AttrPosition.Int(ev.Position), AttrReplaySecs.Float64(ev.Replay.Seconds())))
}

// RunFinished implements durable.Observer: the run's span ends, with an
// error status if the run failed.
func (o *Observer) RunFinished(ctx context.Context, ev durable.RunEvent) {
	o.m.runsEnded.Add(context.Background(), 1, o.attrs(optKey{workflow: ev.Workflow, key: AttrStatus, value: ev.Status.String()}))
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(AttrStatus.String(ev.Status.String()))
	if ev.Err != nil && ev.Status == durable.StatusFailed {
		span.RecordError(ev.Err)
		span.SetStatus(codes.Error, ev.Err.Error())
	}
	span.End()
}

// RunParked implements durable.Observer: the run's span (if it has one
// here) ends with an error status saying why.
func (o *Observer) RunParked(ctx context.Context, ev durable.RunEvent) {
	o.m.runsEnded.Add(context.Background(), 1, o.attrs(optKey{workflow: ev.Workflow, key: AttrStatus, value: durable.StatusParked.String()}))
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(AttrStatus.String(durable.StatusParked.String()))
	if ev.Err != nil {
		span.RecordError(ev.Err)
		span.SetStatus(codes.Error, "parked: "+ev.Err.Error())
	}
	span.End()
}

// RunStopped implements durable.Observer: the incarnation's span ends
// with a "stopped" event; the run goes on in a later span.
func (o *Observer) RunStopped(ctx context.Context, ev durable.RunEvent) {
	if ev.Reason == durable.StopEvicted {
		o.m.evicted.Add(context.Background(), 1, o.attrs(optKey{workflow: ev.Workflow}))
	}
	span := trace.SpanFromContext(ctx)
	as := []attribute.KeyValue{AttrReason.String(ev.Reason), AttrPosition.Int(ev.Position)}
	if ev.Err != nil {
		as = append(as, attribute.String("durable.error", ev.Err.Error()))
	}
	span.AddEvent("stopped", trace.WithAttributes(as...))
	span.End()
}

// StepStarted implements durable.Observer: a span per attempt, child of
// the run's span; the step function's context carries it.
func (o *Observer) StepStarted(ctx context.Context, ev durable.StepEvent) context.Context {
	o.m.stepsStarted.Add(context.Background(), 1, o.attrs(optKey{workflow: ev.Workflow, key: AttrStep, value: ev.Step}))
	ctx, _ = o.tracer.Start(ctx, "durable.step "+ev.Step, trace.WithAttributes(
		AttrRunID.String(ev.RunID), AttrWorkflow.String(ev.Workflow), AttrStep.String(ev.Step),
		AttrPosition.Int(ev.Position), AttrAttempt.Int(ev.Attempt),
		AttrIdempotency.String(ev.RunID+"/"+strconv.Itoa(ev.Position)),
	))
	return ctx
}

// StepFinished implements durable.Observer: the attempt's span ends,
// with an error status if it failed. A step answered from the journal on
// replay makes no span.
func (o *Observer) StepFinished(ctx context.Context, ev durable.StepEvent) {
	if ev.Replayed {
		return
	}
	outcome := "completed"
	if ev.Err != nil {
		outcome = "failed"
	}
	attrs := o.attrs(optKey{ev.Workflow, AttrStep, ev.Step, outcome})
	step := o.attrs(optKey{workflow: ev.Workflow, key: AttrStep, value: ev.Step})
	o.m.stepDuration.Record(context.Background(), ev.Duration.Seconds(), attrs)
	if ev.Err != nil {
		o.m.stepsFailed.Add(context.Background(), 1, step)
	} else {
		o.m.stepsCompleted.Add(context.Background(), 1, step)
	}
	span := trace.SpanFromContext(ctx)
	if ev.Err != nil {
		span.RecordError(ev.Err)
		span.SetStatus(codes.Error, ev.Err.Error())
	}
	span.End()
}

// RetryScheduled implements durable.Observer: a "retry" event on the
// run's span, and the retries counter.
func (o *Observer) RetryScheduled(ctx context.Context, ev durable.StepEvent) {
	o.m.retries.Add(context.Background(), 1, o.attrs(optKey{workflow: ev.Workflow, key: AttrStep, value: ev.Step}))
	trace.SpanFromContext(ctx).AddEvent("retry scheduled", trace.WithAttributes(
		AttrStep.String(ev.Step), AttrAttempt.Int(ev.Attempt), AttrNextAttempt.String(ev.NextAt.UTC().Format(time.RFC3339Nano))))
}

// WaitStarted implements durable.Observer: the run joins the run cache.
func (o *Observer) WaitStarted(ctx context.Context, ev durable.WaitEvent) {
	o.m.cached.Add(context.Background(), 1, o.attrs(optKey{workflow: ev.Workflow}))
}

// WaitEnded implements durable.Observer: the run leaves the run cache.
func (o *Observer) WaitEnded(ctx context.Context, ev durable.WaitEvent) {
	o.m.cached.Add(context.Background(), -1, o.attrs(optKey{workflow: ev.Workflow}))
}

// Committed implements durable.Observer: commit batch size and latency.
func (o *Observer) Committed(ev durable.CommitEvent) {
	ctx := context.Background()
	o.m.commitBatch.Record(ctx, int64(ev.Commits))
	o.m.commitDuration.Record(ctx, ev.Duration.Seconds())
	o.m.commitBytes.Add(ctx, int64(ev.Bytes))
}
