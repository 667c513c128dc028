package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/runtext"
	"github.com/durable-go/durable/web"
)

// schedule serves "schedule SUBCOMMAND ...": the schedules of the
// journal, through a client engine (no workflows: it runs no schedule,
// the engines with workflows do). A change returns once the schedule's
// run took it, which needs an engine with workflows running.
func (c *cli) schedule(args []string) int {
	const use = `usage: durable schedule list
       durable schedule show NAME
       durable schedule create|update NAME -workflow W (-cron EXPR [-zone Z] | -every D) [-input JSON]
              [-jitter D] [-grace D] [-overlap skip|buffer-one|allow-all] [-catch-up latest|skip|all] [-catch-up-max N]
       durable schedule pause|resume|trigger|delete NAME
`
	if len(args) == 0 {
		fmt.Fprint(c.stderr, use)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("schedule "+sub, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(c.stderr, use) }
	e, err := durable.New(c.store, &durable.Config{Logger: slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return c.errorf("%v", err)
	}
	defer e.Close()
	switch sub {
	case "list":
		if _, code, ok := c.positional(fs, args, 0, ""); !ok {
			return code
		}
		list, err := e.ListSchedules(c.ctx)
		if err != nil {
			return c.errorf("%v", err)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tWORKFLOW\tWHEN\tSTATE\tNEXT\tSTARTED\tSKIPPED\tMISSED")
		for _, in := range list {
			s := web.ScheduleOf(in)
			when := "every " + s.Every
			if s.Cron != "" {
				when = fmt.Sprintf("cron %q %s", s.Cron, s.Zone)
			}
			state, next := "active", runtext.Time(in.Next)
			if s.Paused {
				state, next = "paused", "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", s.Name, s.Workflow, when, state, next, s.Started, s.Skipped, s.Missed)
		}
		tw.Flush()
		return exitOK
	case "show":
		pos, code, ok := c.positional(fs, args, 1, "NAME")
		if !ok {
			return code
		}
		return c.printSchedule(e, pos[0], "")
	case "create", "update":
		spec := runtext.ScheduleFlags(fs)
		pos, code, ok := c.positional(fs, args, 1, "NAME -workflow W (-cron EXPR | -every D) ...")
		if !ok {
			return code
		}
		sp, err := spec()
		if err != nil {
			fmt.Fprintf(c.stderr, "durable schedule %s: %v\n", sub, err)
			return exitUsage
		}
		s, err := sp.Schedule()
		if err != nil {
			fmt.Fprintf(c.stderr, "durable schedule %s: %v\n", sub, err)
			return exitUsage
		}
		if sub == "create" {
			err = e.CreateSchedule(c.ctx, pos[0], s)
		} else {
			err = e.UpdateSchedule(c.ctx, pos[0], s)
		}
		if err != nil {
			return c.errorf("%v", err)
		}
		return c.printSchedule(e, pos[0], "")
	case "pause", "resume", "trigger", "delete":
		pos, code, ok := c.positional(fs, args, 1, "NAME")
		if !ok {
			return code
		}
		name, runID := pos[0], ""
		switch sub {
		case "pause":
			err = e.PauseSchedule(c.ctx, name)
		case "resume":
			err = e.ResumeSchedule(c.ctx, name)
		case "trigger":
			runID, err = e.TriggerSchedule(c.ctx, name)
		case "delete":
			if err = e.DeleteSchedule(c.ctx, name); err == nil {
				fmt.Fprintf(c.stdout, "schedule %q deleted\n", name)
				return exitOK
			}
		}
		if err != nil {
			return c.errorf("%v", err)
		}
		return c.printSchedule(e, name, runID)
	}
	fmt.Fprintf(c.stderr, "durable schedule: unknown subcommand %q\n%s", sub, use)
	return exitUsage
}

// printSchedule prints schedule name as the web API's JSON object.
func (c *cli) printSchedule(e *durable.Engine, name, runID string) int {
	in, err := e.GetSchedule(c.ctx, name)
	if err != nil {
		return c.errorf("%v", err)
	}
	if runID != "" {
		fmt.Fprintf(c.stdout, "started run %s\n", runID)
	}
	b, _ := json.MarshalIndent(web.ScheduleOf(in), "", "  ")
	fmt.Fprintf(c.stdout, "%s\n", b)
	return exitOK
}
