package torture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

// WorkflowName is the name of the torture workflow.
const WorkflowName = "torture"

// effectLog receives the effect lines of steps: crashtest.Log in the
// child, a counter in the checker (where nothing may execute).
type effectLog interface {
	Append(format string, args ...any) error
}

// workload is the torture workflow bound to an effect log.
type workload struct {
	log effectLog
	wf  *durable.Workflow[Plan, string]
}

func newWorkload(log effectLog) *workload {
	w := &workload{log: log}
	w.wf = durable.Define(WorkflowName, w.run)
	return w
}

// add appends an effect line. A harness that cannot write its log cannot
// check anything: the process stops.
func (w *workload) add(format string, args ...any) {
	if err := w.log.Append(format, args...); err != nil {
		fmt.Fprintf(os.Stderr, "torture: effect log: %v\n", err)
		os.Exit(3)
	}
}

// ok notes that the workflow saw the outcome of step name: it is recorded
// and must never execute again. During replay it was noted before.
func (w *workload) ok(ctx durable.Context, name string) {
	if !durable.WorkflowInfoFrom(ctx).Replaying {
		w.add("ok %s/%s", ctx.RunID(), name)
	}
}

// body returns the function of step name: it logs "begin run/name/attempt"
// and "end ..." around its work, fails its first fails attempts (or every
// attempt, permanently) and returns stepValue.
func (w *workload) body(name string, fails int, work time.Duration, permanent bool) func(context.Context) (uint32, error) {
	return func(sctx context.Context) (uint32, error) {
		info, _ := durable.StepInfoFrom(sctx)
		key := fmt.Sprintf("%s/%s/%d", info.RunID, name, info.Attempt)
		w.add("begin %s", key)
		if work > 0 {
			t := time.NewTimer(work)
			select {
			case <-t.C:
			case <-sctx.Done():
				t.Stop()
				return 0, sctx.Err()
			}
		}
		w.add("end %s", key)
		switch {
		case permanent:
			return 0, retry.Permanent(errors.New(permanentMsg))
		case info.Attempt <= fails:
			return 0, fmt.Errorf("planned failure of attempt %d", info.Attempt)
		}
		return stepValue(info.RunID, name), nil
	}
}

func policy(op Op) durable.StepOption {
	return durable.WithRetry(retry.Policy{MaxAttempts: op.Fails + 1, Backoff: backoff.Constant(op.Backoff)})
}

func (w *workload) step(ctx durable.Context, name string, op Op, permanent bool) (uint32, error) {
	v, err := durable.Step(ctx, name, w.body(name, op.Fails, op.D, permanent), policy(op))
	w.ok(ctx, name)
	return v, err
}

// run is the workflow: it executes the plan and returns the tokens of its
// operations, which [Expected] computes without executing.
func (w *workload) run(ctx durable.Context, p Plan) (string, error) {
	id := ctx.RunID()
	var toks []string
	for _, op := range p.epochOps(len(p.Done)) {
		switch op.Kind {
		case OpStep:
			if _, err := w.step(ctx, op.Name, op, false); err != nil {
				return "", err
			}
			toks = append(toks, stepToken(id, op.Name))
		case OpFail:
			_, err := w.step(ctx, op.Name, op, true)
			if err == nil {
				err = errors.New("torture: a permanently failing step succeeded")
			}
			return "", err
		case OpSleep:
			if err := durable.Sleep(ctx, op.D); err != nil {
				return "", err
			}
			toks = append(toks, "z")
		case OpNow:
			t := durable.Now(ctx)
			if t.IsZero() {
				return "", errors.New("torture: Now returned the zero time")
			}
			toks = append(toks, "t")
		case OpRecv:
			for range op.N {
				m, err := durable.Receive[string](ctx, op.Name)
				if err != nil {
					return "", err
				}
				toks = append(toks, m)
			}
		case OpFan:
			fs := make([]*durable.Future[uint32], op.N)
			items := make([]durable.Awaitable, op.N)
			for i := range op.N {
				name := fmt.Sprintf("%s.%d", op.Name, i)
				fails := 0
				if i == 0 {
					fails = op.Fails
				}
				o := op
				o.Fails = fails
				fs[i] = durable.Go(ctx, name, w.body(name, fails, op.D, false), policy(o))
				items[i] = fs[i]
			}
			if err := durable.AwaitAll(ctx, items...); err != nil {
				return "", err
			}
			sum := 0
			for i, f := range fs {
				v, err := f.Get(ctx)
				if err != nil {
					return "", err
				}
				w.ok(ctx, fmt.Sprintf("%s.%d", op.Name, i))
				sum += int(v)
			}
			toks = append(toks, fmt.Sprintf("%s=%d", op.Name, sum))
		case OpChild:
			out, err := durable.RunChild(ctx, w.wf, op.ChildID, *op.Child)
			if err != nil {
				return "", err
			}
			toks = append(toks, "child("+out+")")
		case OpSelect:
			tok, err := w.sel(ctx, op)
			if err != nil {
				return "", err
			}
			toks = append(toks, tok)
		case OpCancel:
			return "", w.cancel(ctx, op)
		case OpWait:
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return "", err
			}
			toks = append(toks, "woke")
		default:
			return "", fmt.Errorf("torture: unknown op %d", op.Kind)
		}
	}
	done := append(slices.Clone(p.Done), strings.Join(toks, " "))
	if len(done) < p.epochs() {
		return "", durable.ContinueAsNew(ctx, Plan{Ops: p.Ops, Epochs: p.Epochs, Done: done})
	}
	return strings.Join(done, " | "), nil
}

// sel runs an AwaitAny whose winner does not depend on timing.
func (w *workload) sel(ctx durable.Context, op Op) (string, error) {
	switch op.Variant {
	case 0:
		f := durable.Go(ctx, op.Name, w.body(op.Name, 0, 3*time.Millisecond, false), policy(Op{}))
		i, err := durable.AwaitAny(ctx, f, durable.NewTimer(ctx, time.Hour))
		if err != nil {
			return "", err
		}
		if i != 0 {
			return "", fmt.Errorf("torture: AwaitAny(future, 1h timer) = %d, want 0", i)
		}
		if _, err := f.Get(ctx); err != nil {
			return "", err
		}
		w.ok(ctx, op.Name)
		return "sel0:" + stepToken(ctx.RunID(), op.Name), nil
	case 1:
		i, err := durable.AwaitAny(ctx, durable.NewTimer(ctx, op.D), durable.OnReceive[string]("silent"))
		if err != nil {
			return "", err
		}
		if i != 0 {
			return "", fmt.Errorf("torture: AwaitAny(timer, silent channel) = %d, want 0", i)
		}
		return "sel1", nil
	default:
		rc := durable.OnReceive[string](op.Name)
		i, err := durable.AwaitAny(ctx, durable.NewTimer(ctx, time.Hour), rc)
		if err != nil {
			return "", err
		}
		m, ok := rc.Value()
		if i != 1 || !ok {
			return "", fmt.Errorf("torture: AwaitAny(1h timer, message) = %d (message %v), want 1", i, ok)
		}
		return "sel2:" + m, nil
	}
}

// cancel runs a step, waits for the run's cancellation, runs a cleanup
// step and returns the cancellation. Both steps run on WithoutCancel, so
// they execute whenever the cancellation comes.
func (w *workload) cancel(ctx durable.Context, op Op) error {
	nc := durable.WithoutCancel(ctx)
	if _, err := w.step(nc, "pre", Op{D: time.Millisecond}, false); err != nil {
		return err
	}
	var werr error
	switch op.Variant {
	case 0:
		werr = durable.Sleep(ctx, time.Hour)
	case 1:
		_, werr = durable.Receive[string](ctx, "silent")
	default:
		_, werr = durable.RunChild(ctx, w.wf, op.ChildID, *op.Child)
	}
	if _, err := w.step(nc, "cleanup", Op{D: time.Millisecond}, false); err != nil {
		return err
	}
	if werr == nil {
		return errors.New("torture: the wait ended without a cancellation")
	}
	return werr
}
