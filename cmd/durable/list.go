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

// listFlags are list's filters.
type listFlags struct {
	status, workflow, parent, after string
	limit                           int
}

// list prints one line per run.
func (c *cli) list(args []string) int {
	fs := c.flags("list")
	var o listFlags
	fs.StringVar(&o.status, "status", "", "only runs with this `status`: running, parked, completed, failed or canceled")
	fs.StringVar(&o.workflow, "workflow", "", "only runs of this `workflow`")
	fs.StringVar(&o.parent, "parent", "", "only the children of this `run`")
	fs.IntVar(&o.limit, "limit", 0, "at most `N` runs (0: all in FILE mode, 50 with -addr)")
	fs.StringVar(&o.after, "after", "", "start after this run id: the `CURSOR` a page that stopped at -limit gives")
	fs.BoolVar(&c.json, "json", c.json, "print the runs as JSON")
	npos := 1
	if c.remote != nil {
		npos = 0
	}
	pos, code, ok := c.parse(fs, args, npos)
	if !ok {
		return code
	}
	f := journal.Filter{Workflow: o.workflow, Parent: o.parent, After: o.after}
	if o.status != "" {
		if f.Status = runtext.Statuses[o.status]; f.Status == 0 {
			fmt.Fprintf(c.stderr, "durable list: -status %q: want %s\n", o.status, runtext.StatusNames)
			return exitUsage
		}
	}
	if o.limit < 0 {
		fmt.Fprintf(c.stderr, "durable list: -limit %d: want 0 (all) or more\n", o.limit)
		return exitUsage
	}
	if c.remote != nil {
		return c.remoteList(o)
	}
	limit := &o.limit
	if *limit > 0 {
		f.Limit = *limit + 1 // one more, to say that there are more
	}

	path := pos[0]
	s := c.openReadOnly(path)
	if s == nil {
		return exitFailure
	}
	defer s.Close()
	runs, err := s.ListRuns(c.ctx, f)
	if err != nil && !errors.Is(err, journal.ErrCorrupt) {
		return c.storeFailed(path, "list runs", err)
	}
	more := *limit > 0 && len(runs) > *limit
	if more {
		runs = runs[:*limit]
	}
	if c.json {
		out := struct {
			Runs []web.Run `json:"runs"`
			Next string    `json:"next"`
		}{Runs: []web.Run{}}
		for _, r := range runs {
			out.Runs = append(out.Runs, web.RunOf(inspect.RunInfo[durable.RunInfo](r), time.Now()))
		}
		if more {
			out.Next = runs[len(runs)-1].ID
		}
		if code := c.printJSON(out); code != exitOK || err == nil {
			return code
		}
		return c.storeFailed(path, "some runs could not be read", err)
	}

	runtext.Table(c.stdout, runs, false)
	if len(runs) == 0 && err == nil {
		fmt.Fprintf(c.stderr, "durable: no runs match\n")
	}
	if more {
		fmt.Fprintf(c.stderr, "durable: more runs match; the next page: -after %s\n", runs[len(runs)-1].ID)
	}
	if err != nil { // ErrCorrupt: some runs could not be read
		return c.storeFailed(path, "some runs could not be read", err)
	}
	return exitOK
}
