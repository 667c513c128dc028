package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/durable-go/durable/journal"
)

// export copies runs, with their records and their children (and theirs),
// from the journal at FILE into a new journal file: the input of
// durabletest.Replay, to test a change of code against real runs without
// the whole production file. The copy is a journal like any other (list
// and show read it). Each run's current epoch is copied, as epoch 0;
// inbox messages are not copied.
func (c *cli) export(args []string) int {
	fset := c.flags("export")
	out := fset.String("o", "", "write the runs to `OUT`, a new journal file (required)")
	pos, code, ok := c.parse(fset, args, -2)
	if !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintln(c.stderr, "durable export: -o OUT is required")
		fset.Usage()
		return exitUsage
	}
	path, ids := pos[0], pos[1:]
	if _, err := os.Stat(*out); err == nil {
		return c.errorf("%s exists; remove it or choose another name for the export", *out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return c.errorf("%v", err)
	}
	src := c.openReadOnly(path)
	if src == nil {
		return exitFailure
	}
	defer src.Close()

	// The runs and their descendants, parents first.
	var runs []journal.Run
	seen := map[string]bool{}
	for len(ids) > 0 {
		id := ids[0]
		ids = ids[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		r, err := src.GetRun(c.ctx, id)
		if err != nil {
			if errors.Is(err, journal.ErrNotFound) {
				return c.errorf("%s: no run %q (nothing was written)", path, id)
			}
			return c.storeFailed(path, "run "+id, err)
		}
		runs = append(runs, r)
		children, err := src.ListRuns(c.ctx, journal.Filter{Parent: id})
		if err != nil {
			return c.storeFailed(path, "children of run "+id, err)
		}
		for _, ch := range children {
			ids = append(ids, ch.ID)
		}
	}

	dst, err := journal.OpenBolt(*out, &journal.BoltOptions{LockTimeout: lockTimeout})
	if err != nil {
		c.openFailed(*out, err)
		return exitFailure
	}
	records := 0
	for _, r := range runs {
		recs, err := src.Records(c.ctx, r.ID)
		if err != nil {
			dst.Close()
			os.Remove(*out)
			return c.storeFailed(path, "records of run "+r.ID, err)
		}
		for _, b := range exportBatches(r, recs) {
			if err := dst.Commit(c.ctx, b); err != nil {
				dst.Close()
				os.Remove(*out)
				return c.errorf("%s: write run %q: %v (nothing was kept)", *out, r.ID, err)
			}
		}
		records += len(recs)
	}
	if err := dst.Close(); err != nil {
		os.Remove(*out)
		return c.errorf("%s: %v", *out, err)
	}
	fmt.Fprintf(c.stdout, "wrote %s: %s, %s\n", *out, plural(len(runs), "run", "runs"), plural(records, "record", "records"))
	return exitOK
}

// exportBatches recreate run r with its records: its creation (at its
// creation time), then its records and state (at its update time).
func exportBatches(r journal.Run, recs []journal.Record) []*journal.Batch {
	create := &journal.Batch{Now: r.CreatedAt, Create: []journal.Run{{
		ID: r.ID, Workflow: r.Workflow, Status: journal.StatusRunning, Parent: r.Parent,
		ParentPos: r.ParentPos, Input: r.Input, Deadline: r.Deadline, Meta: r.Meta, Builds: r.Builds,
	}}}
	fill := &journal.Batch{Now: r.UpdatedAt}
	for _, rec := range recs {
		fill.Append = append(fill.Append, journal.Append{RunID: r.ID, Record: rec})
	}
	u := journal.Update{RunID: r.ID, CancelRequested: r.CancelRequested, SetWake: !r.WakeAt.IsZero(), Wake: r.WakeAt}
	if r.Status != journal.StatusRunning {
		u.Status, u.Output, u.Err = r.Status, r.Output, r.Err
	}
	fill.Update = []journal.Update{u}
	return []*journal.Batch{create, fill}
}
