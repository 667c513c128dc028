// Command durable is the durable CLI for a journal in PostgreSQL: it
// lists, shows, cancels and sends to runs in a live database, beside the
// engines that execute them.
//
//	cd journal/postgres
//	go run ./cmd/durable -postgres URL [-schema S] <command> ...
//
// The commands:
//
//	list [-status S] [-workflow W] [-limit N]
//	    one line per run: id, workflow, status, owner, created, updated,
//	    parent, and the first line of the error of a failed or parked run.
//	show ID
//	    a run's fields and its timeline, one journal record per line.
//	cancel ID
//	    requests that the run be canceled; the engine that owns it learns
//	    of it within about 100 ms (LISTEN/NOTIFY) and cancels it.
//	send ID CHANNEL JSON
//	    sends the JSON text as a message on CHANNEL; the run's code
//	    receives it into the type it asks for (durable.Receive[T]), and
//	    its owner hears of it at once.
//	schedule list|show|create|update|pause|resume|trigger|delete ...
//	    the schedules of the journal (durable.Engine.CreateSchedule, ...),
//	    through a client engine; a change returns once the schedule's run
//	    took it (an engine with workflows runs it).
//
// -postgres defaults to $DURABLE_POSTGRES_URL. The core module's
// cmd/durable (bbolt files) cannot depend on pgx; this command is its
// PostgreSQL build and keeps its output format. Exit status: 0 ok, 1
// failure, 2 usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/runtext"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/postgres"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `usage: durable -postgres URL [-schema S] <command> ...

commands:
  list [-status S] [-workflow W] [-limit N]   list runs
  show ID                                     show a run and its timeline
  cancel ID                                   request that a run be canceled
  send ID CHANNEL JSON                        send a JSON message to a run
  schedule list|show|create|update|pause|resume|trigger|delete ...
                                              schedules (see schedule.go)

-postgres defaults to $DURABLE_POSTGRES_URL. Exit status: 0 ok, 1 failure, 2 usage.
`

type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
	store          *postgres.Store
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("durable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	url := fs.String("postgres", os.Getenv("DURABLE_POSTGRES_URL"), "the database (libpq URL or key=value string)")
	schema := fs.String("schema", postgres.DefaultSchema, "the schema that holds the journal")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if *url == "" {
		fmt.Fprintln(stderr, "durable: no database: pass -postgres URL or set DURABLE_POSTGRES_URL")
		return exitUsage
	}
	cmds := map[string]func(*cli, []string) int{"list": (*cli).list, "show": (*cli).show, "cancel": (*cli).cancel, "send": (*cli).send, "schedule": (*cli).schedule}
	cmd := cmds[fs.Arg(0)]
	if cmd == nil {
		fmt.Fprintf(stderr, "durable: unknown command %q\n%s", fs.Arg(0), usage)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, *url, &postgres.Options{Schema: *schema, Logger: slog.New(slog.NewTextHandler(stderr, nil))})
	if err != nil {
		fmt.Fprintf(stderr, "durable: %v\n", err)
		return exitFailure
	}
	defer s.Close()
	return cmd(&cli{ctx: ctx, stdout: stdout, stderr: stderr, store: s}, fs.Args()[1:])
}

func (c *cli) errorf(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "durable: "+format+"\n", args...)
	return exitFailure
}

// positional parses args with fs (flags may follow the positional
// arguments) and wants n positional arguments.
func (c *cli) positional(fs *flag.FlagSet, args []string, n int, what string) ([]string, int, bool) {
	fs.SetOutput(c.stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != n {
		fmt.Fprintf(c.stderr, "usage: durable %s %s\n", fs.Name(), what)
		return nil, exitUsage, false
	}
	return pos, exitOK, true
}

func (c *cli) list(args []string) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	status := fs.String("status", "", "only runs with this `status`: running, parked, completed, failed or canceled")
	workflow := fs.String("workflow", "", "only runs of this `workflow`")
	limit := fs.Int("limit", 0, "at most `N` runs (0: all)")
	if _, code, ok := c.positional(fs, args, 0, "[-status S] [-workflow W] [-limit N]"); !ok {
		return code
	}
	f := journal.Filter{Workflow: *workflow}
	if *status != "" {
		if f.Status = runtext.Statuses[*status]; f.Status == 0 {
			fmt.Fprintf(c.stderr, "durable list: -status %q: want %s\n", *status, runtext.StatusNames)
			return exitUsage
		}
	}
	if *limit < 0 {
		fmt.Fprintf(c.stderr, "durable list: -limit %d: want 0 (all) or more\n", *limit)
		return exitUsage
	}
	if *limit > 0 {
		f.Limit = *limit + 1
	}
	runs, err := c.store.ListRuns(c.ctx, f)
	if err != nil && !errors.Is(err, journal.ErrCorrupt) {
		return c.errorf("list runs: %v", err)
	}
	more := *limit > 0 && len(runs) > *limit
	if more {
		runs = runs[:*limit]
	}
	runtext.Table(c.stdout, runs, true)
	if len(runs) == 0 && err == nil {
		fmt.Fprintln(c.stderr, "durable: no runs match")
	}
	if more {
		fmt.Fprintln(c.stderr, "durable: more runs match; raise -limit to see them")
	}
	if err != nil {
		return c.errorf("some runs could not be read: %v", err)
	}
	return exitOK
}

func (c *cli) show(args []string) int {
	pos, code, ok := c.positional(flag.NewFlagSet("show", flag.ContinueOnError), args, 1, "ID")
	if !ok {
		return code
	}
	id := pos[0]
	r, code, ok := c.getRun(id)
	if !ok {
		return code
	}
	runtext.Fields(c.ctx, c.stdout, c.store, r)
	if err := runtext.Timeline(c.ctx, c.stdout, c.store, id); err != nil {
		return c.errorf("timeline of run %q: %v", id, err)
	}
	return exitOK
}

func (c *cli) cancel(args []string) int {
	pos, code, ok := c.positional(flag.NewFlagSet("cancel", flag.ContinueOnError), args, 1, "ID")
	if !ok {
		return code
	}
	id := pos[0]
	r, code, ok := c.getRun(id)
	if !ok {
		return code
	}
	noop, err := runtext.RequestCancel(c.ctx, c.store, r)
	switch {
	case noop != "":
		fmt.Fprintln(c.stdout, noop)
		return exitOK
	case errors.Is(err, runtext.ErrNothingToCancel):
		return c.errorf("%v", err)
	case err != nil:
		return c.errorf("cancel run %q: %v", id, err)
	}
	fmt.Fprintf(c.stdout, "run %q: cancel requested; the engine that owns it is told at once and cancels it\n", id)
	return exitOK
}

func (c *cli) send(args []string) int {
	pos, code, ok := c.positional(flag.NewFlagSet("send", flag.ContinueOnError), args, 3, "ID CHANNEL JSON")
	if !ok {
		return code
	}
	id, channel, text := pos[0], pos[1], pos[2]
	if !json.Valid([]byte(text)) {
		fmt.Fprintf(c.stderr, "durable send: the message is not valid JSON: %.80s\n", text)
		return exitUsage
	}
	// A client engine: no workflows, so it executes nothing; it encodes
	// the message as the engine does (a JSON message) and commits it.
	e, err := durable.New(c.store, &durable.Config{Logger: slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return c.errorf("%v", err)
	}
	defer e.Close()
	if err := durable.Send(c.ctx, e, id, channel, json.RawMessage(text)); err != nil {
		return c.errorf("%v", err)
	}
	fmt.Fprintf(c.stdout, "run %q: message sent on %q\n", id, channel)
	return exitOK
}

func (c *cli) getRun(id string) (journal.Run, int, bool) {
	r, err := c.store.GetRun(c.ctx, id)
	if errors.Is(err, journal.ErrNotFound) {
		return r, c.errorf("no run %q", id), false
	}
	if err != nil {
		return r, c.errorf("run %q: %v", id, err), false
	}
	return r, exitOK, true
}
