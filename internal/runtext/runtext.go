// Package runtext prints runs of a journal for people, the same way in
// both durable commands: cmd/durable (bbolt files and running
// applications) and journal/postgres/cmd/durable (a live database). What
// opens the store and what a change means (at once, or when the
// application next opens the file) stays with each command.
package runtext

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/inspect"
	"github.com/durable-go/durable/journal"
)

// Statuses maps the names that -status takes to stored statuses.
var Statuses = map[string]journal.Status{
	"running":   journal.StatusRunning,
	"parked":    journal.StatusParked,
	"completed": journal.StatusCompleted,
	"failed":    journal.StatusFailed,
	"canceled":  journal.StatusCanceled,
}

// StatusNames lists what -status accepts, for usage errors.
const StatusNames = "running, parked, completed, failed or canceled"

// Table writes one line per run under a header: id, workflow, status,
// the owning engine (with owner), created, updated, parent, and the
// first line of the error of a failed or parked run.
func Table(w io.Writer, runs []journal.Run, owner bool) {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	head := []string{"ID", "WORKFLOW", "STATUS", "OWNER", "CREATED", "UPDATED", "PARENT", "ERROR"}
	if !owner {
		head = slices.Delete(head, 3, 4)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range runs {
		info := inspect.RunInfo[durable.RunInfo](r)
		msg := ""
		if info.Err != nil && (r.Status == journal.StatusFailed || r.Status == journal.StatusParked) {
			msg = FirstLine(info.Err.Error())
		}
		cols := []string{r.ID, r.Workflow, r.Status.String(), Dash(r.Owner), Time(r.CreatedAt), Time(r.UpdatedAt), Dash(r.Parent), msg}
		if !owner {
			cols = slices.Delete(cols, 3, 4)
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// Fields writes a run's fields, one "name  value" line each, and its
// children as s lists them.
func Fields(ctx context.Context, w io.Writer, s journal.Store, r journal.Run) {
	info := inspect.RunInfo[durable.RunInfo](r)
	field := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-10s %s\n", name, fmt.Sprintf(format, args...))
	}
	field("run", "%s", r.ID)
	field("workflow", "%s", r.Workflow)
	field("status", "%s", r.Status)
	if r.Owner != "" {
		field("owner", "%s (fencing token %d)", r.Owner, r.Token)
	}
	if info.Err != nil {
		field("error", "%s", strings.ReplaceAll(info.Err.Error(), "\n", "\n"+strings.Repeat(" ", 11)))
	}
	if r.Parent != "" {
		field("parent", "%s (waits at position %d)", r.Parent, r.ParentPos)
	}
	if r.Epoch > 0 {
		field("epoch", "%d (continued as new %d times)", r.Epoch, r.Epoch)
	}
	field("created", "%s", Time(r.CreatedAt))
	field("updated", "%s", Time(r.UpdatedAt))
	if !r.WakeAt.IsZero() {
		field("wakes at", "%s", Time(r.WakeAt))
	}
	if len(r.Builds) > 0 {
		field("builds", "%s", strings.Join(r.Builds, ", "))
	}
	if r.Queue != "" {
		state := "admitted"
		if journal.IsWaiting(&r) {
			state = "waiting"
			if q, ok := s.(journal.Queues); ok {
				if pos, err := q.QueuePosition(ctx, &r); err == nil && pos > 0 {
					state = fmt.Sprintf("waiting at position %d", pos)
				}
			}
		}
		field("queue", "%s (%s, priority %d)", r.Queue, state, r.Priority)
	}
	if r.DedupKey != "" {
		field("dedup key", "%s", r.DedupKey)
	}
	if len(info.Meta) > 0 { // what Config.Observer journaled: a trace context, say
		var kv []string
		for k, v := range info.Meta {
			kv = append(kv, k+"="+v)
		}
		slices.Sort(kv)
		field("meta", "%s", strings.Join(kv, " "))
	}
	if !r.Deadline.IsZero() {
		field("deadline", "%s", Time(r.Deadline))
	}
	if r.CancelRequested {
		field("cancel", "requested")
	}
	field("input", "%s", orNone(inspect.DescribePayload(r.Input)))
	if r.Status == journal.StatusCompleted {
		field("output", "%s", orNone(inspect.DescribePayload(r.Output)))
	}
	if kids, err := s.ListRuns(ctx, journal.Filter{Parent: r.ID}); err == nil && len(kids) > 0 {
		var ks []string
		for _, k := range kids {
			ks = append(ks, fmt.Sprintf("%s (%s)", k.ID, k.Status))
		}
		field("children", "%s", strings.Join(ks, ", "))
	}
}

// Timeline writes the run's journal, one record per line, after a blank
// line and a heading. It says so when the records cannot be read and
// returns the error.
func Timeline(ctx context.Context, w io.Writer, s journal.Store, id string) error {
	events, err := durable.History(ctx, s, id)
	switch {
	case err != nil:
		fmt.Fprintf(w, "\ntimeline: cannot be read\n")
		return err
	case len(events) == 0:
		fmt.Fprintf(w, "\ntimeline: no records yet\n")
		return nil
	case len(events) == 1:
		fmt.Fprintf(w, "\ntimeline (1 record):\n")
	default:
		fmt.Fprintf(w, "\ntimeline (%s records):\n", Commas(len(events)))
	}
	for _, ev := range events {
		fmt.Fprintln(w, ev.String())
	}
	return nil
}

// ErrNothingToCancel is RequestCancel's answer for a run that has
// already finished otherwise than canceled.
var ErrNothingToCancel = errors.New("there is nothing to cancel")

// RequestCancel records a cancel request for run r in s. When there is
// nothing to do (r is canceled, or a cancel is already requested) it
// records nothing and returns why, for people; a run that has finished
// otherwise is an error matching ErrNothingToCancel.
func RequestCancel(ctx context.Context, s journal.Store, r journal.Run) (noop string, err error) {
	switch {
	case r.Status == journal.StatusCanceled:
		return fmt.Sprintf("run %q is already canceled; nothing to do", r.ID), nil
	case r.Status.Terminal():
		return "", fmt.Errorf("run %q has already %s; %w", r.ID, r.Status, ErrNothingToCancel)
	case r.CancelRequested:
		return fmt.Sprintf("run %q: cancel already requested", r.ID), nil
	}
	err = s.Commit(ctx, &journal.Batch{Update: []journal.Update{{RunID: r.ID, CancelRequested: true}}})
	if errors.Is(err, journal.ErrFinished) {
		return "", fmt.Errorf("run %q has finished; %w", r.ID, ErrNothingToCancel)
	}
	return "", err
}

// Time formats a stored time for people: UTC, to the second; "-" for
// none.
func Time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// Dash returns s, or "-" for an empty s.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// FirstLine returns s up to its first newline, marked as cut.
func FirstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// Commas formats n with thousands separators: 1,234,567.
func Commas(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
