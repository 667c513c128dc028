package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/durable-go/durable/internal/runtext"
	"github.com/durable-go/durable/web"
)

// schedule serves "durable -addr URL schedule SUBCOMMAND ...": the
// schedules of a running application, through the web API's
// api/schedules (package web, schedules.go).
//
//	schedule list
//	schedule show NAME
//	schedule create NAME -workflow W (-cron EXPR [-zone Z] | -every D) [flags]
//	schedule update NAME -workflow W (-cron EXPR [-zone Z] | -every D) [flags]
//	schedule pause|resume|trigger|delete NAME
func (c *cli) schedule(args []string) int {
	if c.remote == nil {
		return c.needAddr("schedule")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		c.scheduleUsage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, args := args[0], args[1:]
	fs := c.flags("schedule")
	fs.Init("durable schedule "+sub, flag.ContinueOnError)
	fs.BoolVar(&c.json, "json", c.json, "print the answer as JSON")
	switch sub {
	case "list":
		if _, code, ok := c.parse(fs, args, 0); !ok {
			return code
		}
		var out struct {
			Schedules []web.Schedule `json:"schedules"`
		}
		if err := c.call("GET", "api/schedules", nil, &out); err != nil {
			return c.failed("list schedules", err)
		}
		if c.json {
			return c.printJSON(out)
		}
		c.printSchedules(out.Schedules)
		return exitOK
	case "show":
		pos, code, ok := c.parse(fs, args, 1)
		if !ok {
			return code
		}
		return c.scheduleAnswer("GET", "api/schedules/"+url.PathEscape(pos[0]), nil, "show schedule "+pos[0])
	case "create", "update":
		spec := runtext.ScheduleFlags(fs)
		pos, code, ok := c.parse(fs, args, 1)
		if !ok {
			return code
		}
		sp, err := spec()
		if err != nil {
			fmt.Fprintf(c.stderr, "durable schedule %s: %v\n", sub, err)
			return exitUsage
		}
		path := "api/schedules/" + url.PathEscape(pos[0]) + "/update"
		if sub == "create" {
			sp.Name, path = pos[0], "api/schedules"
		}
		body, _ := json.Marshal(sp)
		return c.scheduleAnswer("POST", path, body, sub+" schedule "+pos[0])
	case "pause", "resume", "trigger", "delete":
		pos, code, ok := c.parse(fs, args, 1)
		if !ok {
			return code
		}
		return c.scheduleAnswer("POST", "api/schedules/"+url.PathEscape(pos[0])+"/"+sub, nil, sub+" schedule "+pos[0])
	}
	fmt.Fprintf(c.stderr, "durable schedule: unknown subcommand %q\n", sub)
	c.scheduleUsage()
	return exitUsage
}

func (c *cli) scheduleUsage() {
	fmt.Fprint(c.stderr, `usage: durable -addr URL schedule list
       durable -addr URL schedule show NAME
       durable -addr URL schedule create NAME -workflow W (-cron EXPR [-zone Z] | -every D) [-input JSON]
              [-jitter D] [-grace D] [-overlap skip|buffer-one|allow-all] [-catch-up latest|skip|all] [-catch-up-max N]
       durable -addr URL schedule update NAME (the flags of create: the whole spec)
       durable -addr URL schedule pause|resume|trigger|delete NAME
`)
}

// scheduleAnswer makes a schedule call and prints the schedule it answers
// with (and a trigger's run id).
func (c *cli) scheduleAnswer(method, path string, body []byte, what string) int {
	var out struct {
		Schedule *web.Schedule `json:"schedule,omitempty"`
		RunID    string        `json:"run_id,omitempty"`
		OK       bool          `json:"ok,omitempty"`
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	if err := c.call(method, path, rd, &out); err != nil {
		return c.failed(what, err)
	}
	if c.json {
		return c.printJSON(out)
	}
	if out.Schedule == nil {
		fmt.Fprintf(c.stdout, "%s: done\n", what)
		return exitOK
	}
	if out.RunID != "" {
		fmt.Fprintf(c.stdout, "started run %s\n", out.RunID)
	}
	c.printSchedule(*out.Schedule)
	return exitOK
}

// printSchedules prints schedules as a table.
func (c *cli) printSchedules(list []web.Schedule) {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tWORKFLOW\tWHEN\tSTATE\tNEXT\tSTARTED\tSKIPPED\tMISSED")
	for _, s := range list {
		state, next := "active", apiTime(s.Next)
		if s.Paused {
			state, next = "paused", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", s.Name, s.Workflow, when(s), state, next, s.Started, s.Skipped, s.Missed)
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(c.stdout, strings.TrimRight(line, " \n"))
	}
}

// when says when a schedule fires.
func when(s web.Schedule) string {
	if s.Cron != "" {
		z := s.Zone
		if z == "" {
			z = "UTC"
		}
		return fmt.Sprintf("cron %q %s", s.Cron, z)
	}
	w := "every " + s.Every
	if s.Offset != "" {
		w += " +" + s.Offset
	}
	return w
}

// printSchedule prints one schedule's fields and its recent firings.
func (c *cli) printSchedule(s web.Schedule) {
	w := c.stdout
	fmt.Fprintf(w, "schedule  %s (run %s)\n", s.Name, s.RunID)
	fmt.Fprintf(w, "workflow  %s", s.Workflow)
	if len(s.Input) > 0 {
		fmt.Fprintf(w, " input %s", s.Input)
	}
	fmt.Fprintf(w, "\nwhen      %s", when(s))
	if s.Jitter != "" {
		fmt.Fprintf(w, ", jitter %s", s.Jitter)
	}
	fmt.Fprintf(w, "\npolicies  overlap %s, catch-up %s", s.Overlap, s.CatchUp)
	if s.CatchUpMax > 0 {
		fmt.Fprintf(w, " (at most %d)", s.CatchUpMax)
	}
	if s.Grace != "" {
		fmt.Fprintf(w, ", grace %s", s.Grace)
	}
	fmt.Fprintln(w)
	if s.Paused {
		fmt.Fprintln(w, "state     paused")
	} else {
		fmt.Fprintf(w, "next      %s\n", apiTime(s.Next))
	}
	if s.Buffered != "" {
		fmt.Fprintf(w, "buffered  %s\n", apiTime(s.Buffered))
	}
	fmt.Fprintf(w, "counts    %d started, %d skipped, %d missed\n", s.Started, s.Skipped, s.Missed)
	for _, f := range s.Recent {
		line := fmt.Sprintf("  %s  %-8s %s", apiTime(f.Slot), f.Action, f.RunID)
		if f.Manual {
			line += " (trigger)"
		}
		if f.Error != "" {
			line += " " + f.Error
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}
