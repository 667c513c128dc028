package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/web"

	"github.com/durable-go/durable/internal/inspect"
	"github.com/durable-go/durable/internal/runtext"
	"github.com/durable-go/durable/journal"
)

// writableRun parses "FILE ID" for subcommand name, opens the journal for
// writing and reads the run. When ok is false, code is the exit status;
// otherwise the caller closes s.
//
// With -addr it makes the change through the running application's API
// instead, and ok is false with the exit status of that.
func (c *cli) writableRun(name string, args []string) (s *journal.Bolt, r journal.Run, path, id string, code int, ok bool) {
	fs := c.flags(name)
	fs.BoolVar(&c.json, "json", c.json, "print the run after the change as JSON")
	if c.remote != nil {
		pos, code, ok := c.parse(fs, args, 1)
		if !ok {
			return nil, r, "", "", code, false
		}
		return nil, r, "", "", c.remoteChange(name, pos[0]), false
	}
	pos, code, ok := c.parse(fs, args, 2)
	if !ok {
		return nil, r, "", "", code, false
	}
	path, id = pos[0], pos[1]
	if s = c.openWritable(path); s == nil {
		return nil, r, "", "", exitFailure, false
	}
	if r, code, ok = c.getRun(s, path, id); !ok {
		s.Close()
		return nil, r, "", "", code, false
	}
	return s, r, path, id, exitOK, true
}

// cancel records a cancel request for a run.
func (c *cli) cancel(args []string) int {
	s, r, path, id, code, ok := c.writableRun("cancel", args)
	if !ok {
		return code
	}
	defer s.Close()
	defer c.jsonAfter(s, id)()
	noop, err := runtext.RequestCancel(c.ctx, s, r)
	switch {
	case noop != "":
		fmt.Fprintln(c.stdout, noop)
		return exitOK
	case errors.Is(err, runtext.ErrNothingToCancel):
		return c.errorf("%v", err)
	case err != nil:
		return c.storeFailed(path, fmt.Sprintf("cancel run %q", id), err)
	}
	fmt.Fprintf(c.stdout, "run %q: cancel requested; the application acts on it when it next opens the journal\n", id)
	if r.Status == journal.StatusParked {
		fmt.Fprintf(c.stdout, "(the run is parked: the cancel takes effect when an engine with compatible code for workflow %q resumes it)\n", r.Workflow)
	}
	return exitOK
}

// resume sets a parked run back to running.
func (c *cli) resume(args []string) int {
	s, r, path, id, code, ok := c.writableRun("resume", args)
	if !ok {
		return code
	}
	defer s.Close()
	defer c.jsonAfter(s, id)()
	switch {
	case r.Status == journal.StatusRunning:
		fmt.Fprintf(c.stdout, "run %q is already running; nothing to do\n", id)
		return exitOK
	case r.Status != journal.StatusParked:
		return c.errorf("run %q is %s; only a parked run can be resumed", id, r.Status)
	}
	b := &journal.Batch{Update: []journal.Update{{RunID: id, Status: journal.StatusRunning}}}
	if err := s.Commit(c.ctx, b); err != nil {
		return c.storeFailed(path, fmt.Sprintf("resume run %q", id), err)
	}
	fmt.Fprintf(c.stdout, "run %q: set to running; the next engine that opens the journal with workflow %q resumes it (and parks it again if its code still does not fit)\n", id, r.Workflow)
	return exitOK
}

// getRun reads run id, or says why it cannot.
func (c *cli) getRun(s *journal.Bolt, path, id string) (journal.Run, int, bool) {
	r, err := s.GetRun(c.ctx, id)
	if errors.Is(err, journal.ErrNotFound) {
		return r, c.errorf("%s: no run %q", path, id), false
	}
	if err != nil {
		return r, c.storeFailed(path, fmt.Sprintf("run %q", id), err), false
	}
	return r, 0, true
}

// jsonAfter, with -json, silences a FILE-mode change's messages and
// returns a func that prints the run as it is then, as the API answers a
// change. Without -json it does nothing.
func (c *cli) jsonAfter(s *journal.Bolt, id string) func() {
	if !c.json {
		return func() {}
	}
	out := c.stdout
	c.stdout = io.Discard
	return func() {
		c.stdout = out
		if r, err := s.GetRun(c.ctx, id); err == nil {
			c.printJSON(map[string]web.Run{"run": web.RunOf(inspect.RunInfo[durable.RunInfo](r), time.Now())})
		}
	}
}
