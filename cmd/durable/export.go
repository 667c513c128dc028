package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"

	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/web"
)

// export copies runs, with their records and their children (and theirs),
// from the journal at FILE, or from a running application (-addr), into a
// new journal file: the input of
// durabletest.Replay, to test a change of code against real runs without
// the whole production file. The copy is a journal like any other (list
// and show read it). Each run's current epoch is copied, as epoch 0;
// inbox messages are not copied.
func (c *cli) export(args []string) int {
	fset := c.flags("export")
	out := fset.String("o", "", "write the runs to `OUT`, a new journal file (required)")
	npos := -2 // FILE RUN...
	if c.remote != nil {
		npos = -1 // RUN...
	}
	pos, code, ok := c.parse(fset, args, npos)
	if !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintln(c.stderr, "durable export: -o OUT is required")
		fset.Usage()
		return exitUsage
	}
	if _, err := os.Stat(*out); err == nil {
		return c.errorf("%s exists; remove it or choose another name for the export", *out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return c.errorf("%v", err)
	}
	var src exportSource
	var from string
	ids := pos
	if c.remote != nil {
		src, from = &remoteSource{c}, c.remote.base
	} else {
		path := pos[0]
		ids = pos[1:]
		s := c.openReadOnly(path)
		if s == nil {
			return exitFailure
		}
		defer s.Close()
		src, from = &fileSource{c.ctx, s}, path
	}

	// The runs and their descendants, parents first.
	type exported struct {
		run  journal.Run
		recs []journal.Record
	}
	var runs []exported
	seen := map[string]bool{}
	records := 0
	for len(ids) > 0 {
		id := ids[0]
		ids = ids[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		r, recs, children, err := src.get(id)
		if err != nil {
			if errors.Is(err, journal.ErrNotFound) {
				return c.errorf("%s: no run %q (nothing was written)", from, id)
			}
			return c.errorf("%s: run %s: %v (nothing was written)", from, id, err)
		}
		runs = append(runs, exported{r, recs})
		records += len(recs)
		ids = append(ids, children...)
	}

	dst, err := journal.OpenBolt(*out, &journal.BoltOptions{LockTimeout: lockTimeout})
	if err != nil {
		c.openFailed(*out, err)
		return exitFailure
	}
	for _, r := range runs {
		for _, b := range exportBatches(r.run, r.recs) {
			if err := dst.Commit(c.ctx, b); err != nil {
				dst.Close()
				os.Remove(*out)
				return c.errorf("%s: write run %q: %v (nothing was kept)", *out, r.run.ID, err)
			}
		}
	}
	if err := dst.Close(); err != nil {
		os.Remove(*out)
		return c.errorf("%s: %v", *out, err)
	}
	fmt.Fprintf(c.stdout, "wrote %s: %s, %s\n", *out, plural(len(runs), "run", "runs"), plural(records, "record", "records"))
	return exitOK
}

// exportSource gives a run as the journal stores it, its records and its
// children's ids.
type exportSource interface {
	get(id string) (journal.Run, []journal.Record, []string, error)
}

// fileSource reads a journal file.
type fileSource struct {
	ctx context.Context
	s   *journal.Bolt
}

func (f *fileSource) get(id string) (journal.Run, []journal.Record, []string, error) {
	r, err := f.s.GetRun(f.ctx, id)
	if err != nil {
		return r, nil, nil, err
	}
	recs, err := f.s.Records(f.ctx, id)
	if err != nil {
		return r, nil, nil, err
	}
	var ids []string
	for after := ""; ; {
		children, err := f.s.ListRuns(f.ctx, journal.Filter{Parent: id, After: after, Limit: 1000})
		if err != nil {
			return r, nil, nil, err
		}
		if len(children) == 0 {
			break
		}
		for _, ch := range children {
			ids = append(ids, ch.ID)
		}
		after = children[len(children)-1].ID
	}
	return r, recs, ids, nil
}

// remoteSource asks a running application (GET api/runs/{id}/journal).
type remoteSource struct{ c *cli }

func (s *remoteSource) get(id string) (journal.Run, []journal.Record, []string, error) {
	var rj web.RunJournal
	if err := s.c.call("GET", "api/runs/"+url.PathEscape(id)+"/journal", nil, &rj); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == "not_found" {
			return journal.Run{}, nil, nil, fmt.Errorf("%v: %w", err, journal.ErrNotFound)
		}
		return journal.Run{}, nil, nil, err
	}
	return rj.Run, rj.Records, rj.Children, nil
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
