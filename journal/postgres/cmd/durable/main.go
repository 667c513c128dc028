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
//
// -postgres defaults to $DURABLE_POSTGRES_URL. The core module's
// cmd/durable (bbolt files) cannot depend on pgx; this command is its
// PostgreSQL build and keeps its output format. Exit status: 0 ok, 1
// failure, 2 usage.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/inspect"
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
	cmds := map[string]func(*cli, []string) int{"list": (*cli).list, "show": (*cli).show, "cancel": (*cli).cancel, "send": (*cli).send}
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

var statusNames = map[string]journal.Status{
	"running": journal.StatusRunning, "parked": journal.StatusParked, "completed": journal.StatusCompleted,
	"failed": journal.StatusFailed, "canceled": journal.StatusCanceled,
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
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKFLOW\tSTATUS\tOWNER\tCREATED\tUPDATED\tPARENT\tERROR")
	for _, r := range runs {
		info := inspect.RunInfo[durable.RunInfo](r)
		msg := ""
		if info.Err != nil && (r.Status == journal.StatusFailed || r.Status == journal.StatusParked) {
			msg = firstLine(info.Err.Error())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workflow, r.Status, dash(r.Owner), fmtTime(r.CreatedAt), fmtTime(r.UpdatedAt), dash(r.Parent), msg)
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(c.stdout, strings.TrimRight(line, " \n"))
	}
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
	info := inspect.RunInfo[durable.RunInfo](r)
	w := c.stdout
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
	field("created", "%s", fmtTime(r.CreatedAt))
	field("updated", "%s", fmtTime(r.UpdatedAt))
	if !r.WakeAt.IsZero() {
		field("wakes at", "%s", fmtTime(r.WakeAt))
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
	if kids, err := c.store.ListRuns(c.ctx, journal.Filter{Parent: r.ID}); err == nil && len(kids) > 0 {
		var ks []string
		for _, k := range kids {
			ks = append(ks, fmt.Sprintf("%s (%s)", k.ID, k.Status))
		}
		field("children", "%s", strings.Join(ks, ", "))
	}
	events, err := durable.History(c.ctx, c.store, id)
	if err != nil {
		fmt.Fprintln(w, "\ntimeline: cannot be read")
		return c.errorf("timeline of run %q: %v", id, err)
	}
	if len(events) == 0 {
		fmt.Fprintln(w, "\ntimeline: no records yet")
		return exitOK
	}
	fmt.Fprintf(w, "\ntimeline (%d records):\n", len(events))
	for _, ev := range events {
		fmt.Fprintln(w, ev.String())
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
	switch {
	case r.Status == journal.StatusCanceled:
		fmt.Fprintf(c.stdout, "run %q is already canceled; nothing to do\n", id)
		return exitOK
	case r.Status.Terminal():
		return c.errorf("run %q has already %s; there is nothing to cancel", id, r.Status)
	case r.CancelRequested:
		fmt.Fprintf(c.stdout, "run %q: cancel already requested\n", id)
		return exitOK
	}
	if err := c.store.Commit(c.ctx, &journal.Batch{Update: []journal.Update{{RunID: id, CancelRequested: true}}}); err != nil {
		if errors.Is(err, journal.ErrFinished) {
			return c.errorf("run %q has finished; there is nothing to cancel", id)
		}
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

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func dash(s string) string {
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

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
