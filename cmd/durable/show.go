package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/inspect"
	"github.com/durable-go/durable/internal/runtext"
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
	runtext.Fields(c.ctx, w, s, r)
	if r.Status == journal.StatusParked {
		fmt.Fprintf(w, "\nThe run is parked: an engine with compatible code for workflow %q resumes it when it opens the journal\n(`durable resume` marks it running meanwhile).\n", r.Workflow)
	}

	if err := runtext.Timeline(c.ctx, w, s, id); err != nil {
		return c.storeFailed(path, "timeline", err)
	}
	return exitOK
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
