package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

var statusNames = map[string]journal.Status{
	"running":   journal.StatusRunning,
	"parked":    journal.StatusParked,
	"completed": journal.StatusCompleted,
	"failed":    journal.StatusFailed,
	"canceled":  journal.StatusCanceled,
}

// list prints one line per run.
func (c *cli) list(args []string) int {
	fs := c.flags("list")
	status := fs.String("status", "", "only runs with this `status`: running, parked, completed, failed or canceled")
	workflow := fs.String("workflow", "", "only runs of this `workflow`")
	limit := fs.Int("limit", 0, "at most `N` runs (0: all)")
	pos, code, ok := c.parse(fs, args, 1)
	if !ok {
		return code
	}
	f := journal.Filter{Workflow: *workflow}
	if *status != "" {
		if f.Status = statusNames[*status]; f.Status == 0 {
			fmt.Fprintf(c.stderr, "durable list: -status %q: want running, parked, completed, failed or canceled\n", *status)
			return exitUsage
		}
	}
	if *limit < 0 {
		fmt.Fprintf(c.stderr, "durable list: -limit %d: want 0 (all) or more\n", *limit)
		return exitUsage
	}
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

	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKFLOW\tSTATUS\tCREATED\tUPDATED\tPARENT\tERROR")
	for _, r := range runs {
		info := durable.RunInfoOf(r)
		parent, msg := r.Parent, ""
		if parent == "" {
			parent = "-"
		}
		if info.Err != nil && (r.Status == journal.StatusFailed || r.Status == journal.StatusParked) {
			msg = firstLine(info.Err.Error())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workflow, r.Status, fmtTime(r.CreatedAt), fmtTime(r.UpdatedAt), parent, msg)
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(c.stdout, strings.TrimRight(line, " \n"))
	}
	if len(runs) == 0 && err == nil {
		fmt.Fprintf(c.stderr, "durable: no runs match\n")
	}
	if more {
		fmt.Fprintf(c.stderr, "durable: more runs match; raise -limit to see them\n")
	}
	if err != nil { // ErrCorrupt: some runs could not be read
		return c.storeFailed(path, "some runs could not be read", err)
	}
	return exitOK
}
