package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/durable-go/durable/internal/clip"
	"github.com/durable-go/durable/internal/inspect"
	"github.com/durable-go/durable/journal"
)

// Event is one record of a run's journal, described for people: what
// `durable show` prints. It reads the journal only; no workflow code is
// needed.
type Event struct {
	Position int
	Seq      int
	Kind     string // "step", "sleep", "receive", "child", "now", "select", "timer", "cancel", ...
	Name     string // the step name, channel or child workflow
	What     string // "completed", "failed", "attempt 2 failed", "started", ...
	Time     time.Time
	// Written is when the record was written, for records whose Time
	// field says something else or nothing: outcomes, starts. It is zero
	// for records that carry a time they wait for (a failed attempt's
	// next attempt, a sleep's end, a receive's timeout, a clock reading,
	// a timer) and for records written before this field existed.
	Written time.Time
	// Detail is the recorded value (as JSON), the error message, or the
	// child id.
	Detail string
}

// String formats the event on one line.
func (ev Event) String() string {
	s := fmt.Sprintf("%4d.%d  %-7s", ev.Position, ev.Seq, ev.Kind)
	if ev.Name != "" {
		s += " " + strconv.Quote(ev.Name)
	}
	s += "  " + ev.What
	if !ev.Time.IsZero() {
		s += " " + ev.Time.Format(time.RFC3339Nano)
	}
	if ev.Detail != "" {
		s += ": " + oneLine.Replace(ev.Detail) // error messages may span lines (errors.Join)
	}
	return s
}

// oneLine escapes line breaks.
var oneLine = strings.NewReplacer("\r", `\r`, "\n", `\n`)

// History returns the events of run id's journal, in position order.
// Errors: those of store.Records (journal.ErrNotFound, journal.ErrCorrupt).
func History(ctx context.Context, store journal.Store, id string) ([]Event, error) {
	if store == nil {
		return nil, &ArgError{Msg: "durable: History: nil store"}
	}
	recs, err := store.Records(ctx, id)
	if err != nil {
		return nil, errorf("durable: history of run %s: %w", clip.Q(id), err)
	}
	out := make([]Event, 0, len(recs))
	attempts := map[uint32]int{}
	for _, r := range recs {
		ev := Event{Position: int(r.Pos), Seq: int(r.Seq), Kind: kindName(r.Kind), Name: r.Name}
		if stamped(r) {
			ev.Written = r.Time
		}
		switch {
		case r.Flags&flagAttempt != 0:
			attempts[r.Pos]++
			ev.What = fmt.Sprintf("attempt %d failed, next at", attempts[r.Pos])
			ev.Time = r.Time
			ev.Detail = decodeError(r.Data).Error()
		case r.Flags&flagStarted != 0:
			ev.What = fmt.Sprintf("attempt %d started (at most once)", attempts[r.Pos]+1)
		case r.Flags&flagDone != 0 && r.Flags&flagCancel != 0:
			ev.What = "canceled"
			ev.Detail = decodeError(r.Data).Error()
		case r.Flags&flagDone != 0 && r.Flags&flagError != 0:
			ev.What = "failed"
			ev.Detail = decodeError(r.Data).Error()
		case r.Kind == kindChild && r.Seq == 0:
			ev.What, ev.Detail = "started", string(r.Data)
		case r.Kind == kindEvent:
			ev.What, ev.Detail = "set", describeValue(r.Data)
		case r.Kind == kindCancel:
			ev.What = "requested"
		case r.Kind == kindNow:
			ev.What, ev.Time = "read clock", r.Time
		case r.Kind == kindTimer:
			ev.What, ev.Time = "timer set, fires at", r.Time
		case r.Flags&flagDone != 0:
			ev.What = "completed"
			ev.Detail = describeValue(r.Data)
		case !r.Time.IsZero():
			ev.What, ev.Time = "waiting until", r.Time
		default:
			ev.What = "pending"
		}
		out = append(out, ev)
	}
	return out, nil
}

// stamped reports whether r.Time is when r was written (see
// stampRecords), not a time the operation waits for.
func stamped(r journal.Record) bool {
	switch {
	case r.Kind == kindNow, r.Kind == kindTimer, r.Flags&flagAttempt != 0:
		return false
	case r.Flags&(flagDone|flagStarted) != 0:
		return true
	}
	return r.Kind == kindChild && r.Seq == 0
}

// describeValue renders a msgpack payload as JSON, for people.
func describeValue(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	const max = 200
	if j, ok := jsonMessage(b); ok {
		if len(j) > max {
			return string(j[:max]) + "…"
		}
		return string(j)
	}
	var v any
	if err := unmarshal(b, &v); err != nil {
		return fmt.Sprintf("(%d bytes that do not decode: %v)", len(b), err)
	}
	j, err := json.Marshal(jsonable(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(j) > max {
		return string(j[:max]) + "…"
	}
	return string(j)
}

// jsonable converts msgpack's map[any]any into something encoding/json
// accepts.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, val := range t {
			m[fmt.Sprint(k)] = jsonable(val)
		}
		return m
	case map[string]any:
		for k, val := range t {
			t[k] = jsonable(val)
		}
		return t
	case []any:
		for i := range t {
			t[i] = jsonable(t[i])
		}
		return t
	case []byte:
		return fmt.Sprintf("%x", t)
	}
	return v
}

// cmd/durable prints journals with durable's decoding, through
// internal/inspect.
func init() {
	inspect.DescribePayload = describeValue
	inspect.SetRunInfo(func(r journal.Run) RunInfo { return infoOf(&r) })
}

// History returns the events of run id's journal, as the package-level
// [History] does on the engine's store. Errors: those of [History]
// (wrapping journal.ErrNotFound for an unknown run).
func (e *Engine) History(ctx context.Context, id string) ([]Event, error) {
	return History(ctx, e.store, id)
}
