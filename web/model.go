package web

import (
	"errors"
	"fmt"
	"time"

	"github.com/durable-go/durable"
)

// Run is a run as the API returns it.
type Run struct {
	ID              string         `json:"id"`
	Workflow        string         `json:"workflow"`
	Status          string         `json:"status"` // running, parked, completed, failed, canceled
	Error           string         `json:"error,omitempty"`
	Parent          string         `json:"parent"`
	CreatedAt       string         `json:"created_at"`
	UpdatedAt       string         `json:"updated_at"`
	WakeAt          string         `json:"wake_at,omitempty"`
	Deadline        string         `json:"deadline,omitempty"`
	CancelRequested bool           `json:"cancel_requested"`
	Input           string         `json:"input,omitempty"`  // JSON, cut at 200 bytes (a single run only)
	Output          string         `json:"output,omitempty"` // the result of a completed run, likewise
	WaitingFor      string         `json:"waiting_for,omitempty"`
	Pending         []Operation    `json:"pending,omitempty"`
	Inbox           int            `json:"inbox"`
	InboxChannels   map[string]int `json:"inbox_channels,omitempty"`
	Builds          []string       `json:"builds,omitempty"`         // Config.BuildID of the engines that started and resumed it
	Queue           string         `json:"queue,omitempty"`          // the queue it was started on
	Priority        int            `json:"priority,omitempty"`       // its priority there
	QueuePosition   int            `json:"queue_position,omitempty"` // while it waits: 1 = next to be admitted
	DedupKey        string         `json:"dedup_key,omitempty"`
	Diff            *Diff          `json:"diff,omitempty"`
	Trace           []Frame        `json:"trace,omitempty"`
}

// Operation is an operation a run began and did not finish.
type Operation struct {
	Position    int    `json:"position"`
	Kind        string `json:"kind"`
	Name        string `json:"name,omitempty"`
	Attempt     int    `json:"attempt,omitempty"`
	NextAttempt string `json:"next_attempt,omitempty"`
	LastError   string `json:"last_error,omitempty"`
	Due         string `json:"due,omitempty"`
	Child       string `json:"child,omitempty"`
	Inbox       int    `json:"inbox,omitempty"`
}

// Diff is where a parked run's replay diverged from its journal.
type Diff struct {
	Position int    `json:"position"`
	Recorded string `json:"recorded"`
	Called   string `json:"called"` // "" if the code returned instead
	Location string `json:"location,omitempty"`
}

// Frame is one level of a failure's path across await points: a run
// waiting on a child or a step, outermost first; the last frame holds the
// error itself.
type Frame struct {
	Workflow string `json:"workflow,omitempty"`
	Run      string `json:"run,omitempty"`
	Call     string `json:"call,omitempty"` // `step "charge"`, `child shipping(o-1/4)`
	Position int    `json:"position,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	Error    string `json:"error,omitempty"`
	Stack    string `json:"stack,omitempty"`
}

// Event is one journal record of a run.
type Event struct {
	Position int    `json:"position"`
	Seq      int    `json:"seq"`
	Kind     string `json:"kind"`
	Name     string `json:"name,omitempty"`
	What     string `json:"what"`
	Time     string `json:"time,omitempty"`
	Written  string `json:"written,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// stamp formats t for the API: RFC 3339 in UTC with the fraction of a
// second when there is one; "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// RunOf converts info into its API form; now decides whether a retry is
// due. cmd/durable prints it for -json.
func RunOf(info durable.RunInfo, now time.Time) Run {
	r := Run{
		ID:              info.ID,
		Workflow:        info.Workflow,
		Status:          info.Status.String(),
		Parent:          info.Parent,
		CreatedAt:       stamp(info.CreatedAt),
		UpdatedAt:       stamp(info.UpdatedAt),
		WakeAt:          stamp(info.WakeAt),
		Deadline:        stamp(info.Deadline),
		CancelRequested: info.CancelRequested,
		Input:           info.Input,
		Output:          info.Output,
		Inbox:           info.Inbox,
		InboxChannels:   info.InboxChannels,
		Builds:          info.Builds,
		Queue:           info.Queue,
		Priority:        info.Priority,
		QueuePosition:   info.QueuePosition,
		DedupKey:        info.DedupKey,
	}
	if info.Err != nil {
		r.Error = info.Err.Error()
	}
	for _, op := range info.Pending {
		r.Pending = append(r.Pending, Operation{
			Position: op.Position, Kind: op.Kind, Name: op.Name, Attempt: op.Attempt,
			NextAttempt: stamp(op.NextAttempt), LastError: op.LastError, Due: stamp(op.Due),
			Child: op.Child, Inbox: op.Inbox,
		})
	}
	r.WaitingFor = waitingFor(info, now)
	var nd *durable.NondeterminismError
	if errors.As(info.Err, &nd) {
		r.Diff = &Diff{Position: nd.Position, Recorded: nd.Recorded, Called: nd.Called, Location: nd.Location}
	}
	r.Trace = trace(info.Err)
	return r
}

// waitingFor says in a line what an unfinished run is doing now.
func waitingFor(info durable.RunInfo, now time.Time) string {
	switch info.Status {
	case durable.StatusParked:
		return "parked: resume it once its code fits its journal"
	case durable.StatusRunning:
	default:
		return ""
	}
	if info.CancelRequested {
		return "canceling: the run was asked to stop"
	}
	if len(info.Pending) == 0 {
		if info.Waiting != "" { // an idle run not loaded, or one this engine lacks the workflow of
			return "waiting for " + info.Waiting
		}
		return "running"
	}
	op := info.Pending[len(info.Pending)-1]
	var children []durable.Operation
	for _, p := range info.Pending {
		if p.Kind == "step" && p.LastError != "" { // a retry says most about a run
			op = p
			break
		}
		if p.Kind == "child" {
			children = append(children, p)
		}
	}
	if (op.Kind == "all" || op.Kind == "select" || op.Kind == "child") && len(children) > 0 {
		if len(children) == 1 {
			return fmt.Sprintf("waiting for child %s (%s)", children[0].Child, children[0].Name)
		}
		return fmt.Sprintf("waiting for %d children", len(children))
	}
	switch op.Kind {
	case "step":
		if !op.NextAttempt.IsZero() && op.NextAttempt.After(now) {
			return fmt.Sprintf("retrying step %q: attempt %d at %s", op.Name, op.Attempt, human(op.NextAttempt))
		}
		return fmt.Sprintf("executing step %q (attempt %d)", op.Name, op.Attempt)
	case "sleep":
		return "sleeping until " + human(op.Due)
	case "start":
		return "starts at " + human(op.Due)
	case "receive":
		s := fmt.Sprintf("waiting for a message on %q", op.Name)
		if !op.Due.IsZero() {
			s += " until " + human(op.Due)
		}
		return s
	case "select":
		return "waiting for the first of several events"
	}
	return "waiting (" + op.Kind + ")"
}

// human formats a time for people: UTC, to the second.
func human(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// trace breaks a failure into its path across await points: the runs and
// calls it went through (children, steps), then the error itself. It
// returns nil for an error that went through none.
func trace(err error) []Frame {
	var out []Frame
	through := false
	for err != nil {
		switch e := err.(type) {
		case *durable.ChildError:
			out = append(out, Frame{Workflow: e.Parent, Run: e.ParentID, Call: fmt.Sprintf("child %s(%s)", e.Workflow, e.RunID)})
			err, through = e.Err, true
			continue
		case *durable.StepError:
			out = append(out, Frame{Workflow: e.Workflow, Run: e.RunID, Call: fmt.Sprintf("step %q", e.Step), Position: e.Position, Attempts: e.Attempts})
			err, through = e.Err, true
			continue
		case *durable.PanicError:
			out = append(out, Frame{Error: "panic: " + e.Value, Stack: e.Stack})
		default:
			out = append(out, Frame{Error: err.Error()})
		}
		break
	}
	if !through {
		return nil
	}
	return out
}

// EventOf converts ev into its API form.
func EventOf(ev durable.Event) Event {
	return Event{
		Position: ev.Position, Seq: ev.Seq, Kind: ev.Kind, Name: ev.Name, What: ev.What,
		Time: stamp(ev.Time), Written: stamp(ev.Written), Detail: ev.Detail,
	}
}
