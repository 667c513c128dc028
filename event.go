package durable

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/journal"
)

// kindEvent is the record kind of a SetEvent call (record.go lists the
// kinds): Name is the key, Data the encoded value, Flags flagDone. Older
// engines, which do not know the kind, park a run that holds one.
const kindEvent uint8 = 10

// eventPoll is how often GetEvent reads the journal again when other
// processes may publish (a store that implements journal.Coordinator):
// their SetEvent cannot notify this process.
const eventPoll = 250 * time.Millisecond

// SetEvent publishes value v under key for code outside the run to read
// with [GetEvent]: progress ("step 3 of 10"), or the answer of a
// request/response exchange with a running workflow. It is a durable
// operation: journaled at its position (on replay it publishes nothing
// again), and the value stays readable after the run ends, until the run
// is deleted by Config.Retention. Setting a key again replaces its value:
// the last one wins. Values are those of the run's current epoch: after
// [ContinueAsNew] the run publishes afresh. It returns the run's
// cancellation, or an error matching [ErrPayload] for a value that cannot
// be encoded (nothing is published then). key is at most 1024 bytes.
func SetEvent(ctx Context, key string, v any) error {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		return err
	}
	defer x.leave()
	if err := checkEventKey(key); err != nil {
		return err
	}
	o, rec, settled := x.begin(ctx, kindEvent, key)
	if settled {
		return outcomeErr(rec)
	}
	data, err := encodePayload(v, x.e.cfg.MaxPayloadBytes)
	if err != nil {
		return payloadErr(err, "event %q of run %q", key, x.id)
	}
	r := o.record(kindEvent, key, flagDone)
	r.Data = data
	x.write(nil, r)
	x.e.events.notify(x.id)
	return nil
}

// GetEvent returns the value that run id published under key with
// [SetEvent] (the latest one), decoded into T, waiting up to timeout for
// it to be published. A timeout of zero or less only looks. It fails with
// an error matching [ErrTimeout] if nothing was published in time,
// [ErrNotFound] if there is no run id, [ErrFinished] if the run finished
// without publishing key, [ErrPayload] if the value does not decode into
// T, and ctx's error if ctx ends first. It works from any engine on the
// journal, including one without the run's workflow: in one process a
// publication wakes the waiters at once; with a store shared by several
// processes (a journal.Coordinator) waiters also read the journal again
// every 250ms.
func GetEvent[T any](ctx context.Context, e *Engine, id, key string, timeout time.Duration) (T, error) {
	var zero T
	if e == nil {
		return zero, errNilEngine
	}
	if err := checkRunID(id); err != nil {
		return zero, err
	}
	if id == "" {
		return zero, &ArgError{Msg: "durable: GetEvent: empty run id"}
	}
	if err := checkEventKey(key); err != nil {
		return zero, err
	}
	_, poll := e.store.(journal.Coordinator)
	deadline := later(e.clock.Now(), timeout)
	var timer <-chan time.Time
	if timeout > 0 {
		c, stop := e.clock.TimerAt(deadline)
		defer stop()
		timer = c
	}
	for {
		w := e.events.watch(id)
		data, found, err := e.findEvent(ctx, id, key)
		if err == nil && found {
			e.events.unwatch(id, w)
			var v T
			if err := decodePayload(data, &v, e.cfg.MaxPayloadBytes); err != nil {
				return zero, payloadErr(err, "event %q of run %q", key, id)
			}
			return v, nil
		}
		if err != nil || timeout <= 0 {
			e.events.unwatch(id, w)
			if err == nil {
				err = errorf("durable: event %s of run %s: %w", clip.Q(key), clip.Q(id), ErrTimeout)
			}
			return zero, err
		}
		var tick <-chan time.Time
		var stopTick func() bool
		if poll {
			tick, stopTick = e.clock.TimerAt(later(e.clock.Now(), eventPoll))
		}
		select {
		case <-w.ch:
			err = nil
		case <-tick:
			err = nil
		case <-timer:
			err = errorf("durable: event %s of run %s: %w", clip.Q(key), clip.Q(id), ErrTimeout)
		case <-ctx.Done():
			err = ctx.Err()
		case <-e.ctx.Done():
			err = ErrClosed
		}
		if stopTick != nil {
			stopTick()
		}
		e.events.unwatch(id, w)
		if err != nil {
			// A last look: the value may have come with the timeout.
			if data, found, ferr := e.findEvent(ctx, id, key); ferr == nil && found && ctx.Err() == nil {
				var v T
				if err := decodePayload(data, &v, e.cfg.MaxPayloadBytes); err != nil {
					return zero, payloadErr(err, "event %q of run %q", key, id)
				}
				return v, nil
			}
			return zero, err
		}
	}
}

// findEvent reads run id's journal for the latest value of key. A run
// that finished without it fails with ErrFinished.
func (e *Engine) findEvent(ctx context.Context, id, key string) ([]byte, bool, error) {
	recs, err := e.store.Records(ctx, id)
	if err != nil {
		if e.isClosed() {
			return nil, false, ErrClosed
		}
		return nil, false, errorf("durable: event %s of run %s: %w", clip.Q(key), clip.Q(id), err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if r := recs[i]; r.Kind == kindEvent && r.Name == key && r.Flags&flagDone != 0 && r.Flags&flagError == 0 {
			return r.Data, true, nil
		}
	}
	row, err := e.store.GetRun(ctx, id)
	if err != nil {
		return nil, false, errorf("durable: event %s of run %s: %w", clip.Q(key), clip.Q(id), err)
	}
	if row.Status.Terminal() {
		return nil, false, errorf("durable: event %s of run %s: the run is %s and never set it: %w", clip.Q(key), clip.Q(id), Status(row.Status), ErrFinished)
	}
	return nil, false, nil
}

func checkEventKey(key string) error {
	if key == "" || len(key) > journal.MaxNameLen {
		return &ArgError{Msg: fmt.Sprintf("durable: event key of %d bytes: want 1 to %d", len(key), journal.MaxNameLen)}
	}
	return nil
}

// eventHub wakes the GetEvent calls waiting in this process for a run's
// events. The zero value is ready to use.
type eventHub struct {
	mu sync.Mutex
	m  map[string]*eventWatch
}

type eventWatch struct {
	ch chan struct{} // closed by the next notify of the run
	n  int           // GetEvent calls holding it
}

// watch returns the watch that the next notify of run id closes.
func (h *eventHub) watch(id string) *eventWatch {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*eventWatch{}
	}
	w := h.m[id]
	if w == nil {
		w = &eventWatch{ch: make(chan struct{})}
		h.m[id] = w
	}
	w.n++
	return w
}

// unwatch releases w, forgetting it when nobody holds it.
func (h *eventHub) unwatch(id string, w *eventWatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.n--; w.n == 0 && h.m[id] == w {
		delete(h.m, id)
	}
}

// notify wakes the waiters on run id.
func (h *eventHub) notify(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.m[id]; w != nil {
		close(w.ch)
		delete(h.m, id)
	}
}
