package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/inspect"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/web"
)

// show prints a run's fields and its timeline.
func (c *cli) show(args []string) int {
	fs := c.flags("show")
	fs.BoolVar(&c.json, "json", c.json, "print the run, its timeline and its children as JSON")
	if c.remote != nil {
		pos, code, ok := c.parse(fs, args, 1)
		if !ok {
			return code
		}
		return c.remoteShow(pos[0])
	}
	pos, code, ok := c.parse(fs, args, 2)
	if !ok {
		return code
	}
	path, id := pos[0], pos[1]
	s := c.openReadOnly(path)
	if s == nil {
		return exitFailure
	}
	defer s.Close()
	r, err := s.GetRun(c.ctx, id)
	if errors.Is(err, journal.ErrNotFound) {
		return c.errorf("%s: no run %q", path, id)
	}
	if err != nil {
		return c.storeFailed(path, fmt.Sprintf("run %q", id), err)
	}
	info := inspect.RunInfo[durable.RunInfo](r)
	if c.json {
		return c.showJSON(s, path, info)
	}

	w := c.stdout
	field := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-10s %s\n", name, fmt.Sprintf(format, args...))
	}
	field("run", "%s", r.ID)
	field("workflow", "%s", r.Workflow)
	field("status", "%s", r.Status)
	if info.Err != nil {
		field("error", "%s", strings.ReplaceAll(info.Err.Error(), "\n", "\n"+strings.Repeat(" ", 11)))
	}
	if r.Parent != "" {
		field("parent", "%s (waits at position %d)", r.Parent, r.ParentPos)
	}
	if r.Epoch > 0 {
		field("epoch", "%d (continued as new %d times)", r.Epoch, r.Epoch)
	}
	field("created", "%s", fmtTime(r.CreatedAt))
	field("updated", "%s", fmtTime(r.UpdatedAt))
	if !r.WakeAt.IsZero() {
		field("wakes at", "%s", fmtTime(r.WakeAt))
	}
	if len(r.Builds) > 0 {
		field("builds", "%s", strings.Join(r.Builds, ", "))
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
		field("deadline", "%s", fmtTime(r.Deadline))
	}
	if r.CancelRequested {
		field("cancel", "requested")
	}
	field("input", "%s", orNone(inspect.DescribePayload(r.Input)))
	if r.Status == journal.StatusCompleted {
		field("output", "%s", orNone(inspect.DescribePayload(r.Output)))
	}
	if kids, err := s.ListRuns(c.ctx, journal.Filter{Parent: r.ID}); err == nil && len(kids) > 0 {
		var ks []string
		for _, k := range kids {
			ks = append(ks, fmt.Sprintf("%s (%s)", k.ID, k.Status))
		}
		field("children", "%s", strings.Join(ks, ", "))
	}
	if r.Status == journal.StatusParked {
		fmt.Fprintf(w, "\nThe run is parked: an engine with compatible code for workflow %q resumes it when it opens the journal\n(`durable resume` marks it running meanwhile).\n", r.Workflow)
	}

	events, err := durable.History(c.ctx, s, id)
	if err != nil {
		fmt.Fprintf(w, "\ntimeline: cannot be read\n")
		return c.storeFailed(path, "timeline", err)
	}
	if len(events) == 0 {
		fmt.Fprintf(w, "\ntimeline: no records yet\n")
		return exitOK
	}
	fmt.Fprintf(w, "\ntimeline (%s):\n", plural(len(events), "record", "records"))
	for _, ev := range events {
		fmt.Fprintln(w, ev.String())
	}
	return exitOK
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// showJSON prints what GET api/runs/{id} answers, from the file.
func (c *cli) showJSON(s *journal.Bolt, path string, info durable.RunInfo) int {
	now := time.Now()
	d := runDetail{Run: web.RunOf(info, now), Events: []web.Event{}, Children: []web.Run{}}
	events, err := durable.History(c.ctx, s, info.ID)
	if err != nil {
		return c.storeFailed(path, "timeline", err)
	}
	for _, ev := range events {
		d.Events = append(d.Events, web.EventOf(ev))
	}
	if kids, err := s.ListRuns(c.ctx, journal.Filter{Parent: info.ID}); err == nil {
		for _, k := range kids {
			d.Children = append(d.Children, web.RunOf(inspect.RunInfo[durable.RunInfo](k), now))
		}
	}
	return c.printJSON(d)
}
