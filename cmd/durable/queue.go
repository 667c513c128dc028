package main

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/durable-go/durable/web"
)

// queues prints each queue: its limits (with -addr: the application's
// Config.Queues; a FILE does not hold them), its running and waiting
// runs, and the first waiting runs in the order they will be admitted.
func (c *cli) queues(args []string) int {
	fs := c.flags("queues")
	next := fs.Int("n", 10, "list up to `N` waiting runs per queue")
	fs.BoolVar(&c.json, "json", c.json, "print the queues as JSON")
	npos := 1
	if c.remote != nil {
		npos = 0
	}
	pos, code, ok := c.parse(fs, args, npos)
	if !ok {
		return code
	}
	if *next < 0 {
		fmt.Fprintf(c.stderr, "durable queues: -n %d: want 0 or more\n", *next)
		return exitUsage
	}
	var qs []web.Queue
	if c.remote != nil {
		var body struct {
			Queues []web.Queue `json:"queues"`
		}
		if err := c.call("GET", "api/queues?"+url.Values{"next": {fmt.Sprint(*next)}}.Encode(), nil, &body); err != nil {
			return c.failed("list queues", err)
		}
		qs = body.Queues
	} else {
		path := pos[0]
		s := c.openReadOnly(path)
		if s == nil {
			return exitFailure
		}
		defer s.Close()
		names, err := s.QueueNames(c.ctx)
		if err != nil {
			return c.storeFailed(path, "list queues", err)
		}
		for _, name := range names {
			st, err := s.QueueStats(c.ctx, name)
			if err != nil {
				return c.storeFailed(path, "queue "+name, err)
			}
			q := web.Queue{Name: name, Running: st.Active, Waiting: st.Waiting, Next: []web.QueuedRun{}}
			if *next > 0 {
				runs, err := s.Waiting(c.ctx, name, *next)
				if err != nil {
					return c.storeFailed(path, "queue "+name, err)
				}
				for i, r := range runs {
					q.Next = append(q.Next, web.QueuedRun{ID: r.ID, Workflow: r.Workflow, Priority: int(r.Priority), Position: i + 1, CreatedAt: r.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999999Z07:00")})
				}
			}
			qs = append(qs, q)
		}
	}
	if qs == nil {
		qs = []web.Queue{}
	}
	if c.json {
		return c.printJSON(map[string]any{"queues": qs})
	}
	if len(qs) == 0 {
		fmt.Fprintln(c.stderr, "durable: no queues")
		return exitOK
	}
	limit := func(n int) string {
		if c.remote == nil {
			return "?" // the journal does not hold Config.Queues
		}
		if n == 0 {
			return "-"
		}
		return fmt.Sprint(n)
	}
	var out bytes.Buffer
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tCONCURRENCY\tGLOBAL\tRATE\tRUNNING\tWAITING")
	for _, q := range qs {
		rate := limit(0)
		if q.Rate > 0 {
			rate = fmt.Sprintf("%g/s", q.Rate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", q.Name, limit(q.Concurrency), limit(q.GlobalConcurrency), rate, q.Running, q.Waiting)
	}
	tw.Flush()
	for _, q := range qs {
		if len(q.Next) == 0 {
			continue
		}
		fmt.Fprintf(&out, "\nwaiting in %s (%d):\n", q.Name, q.Waiting)
		tw = tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  POS\tID\tWORKFLOW\tPRIORITY\tCREATED")
		for _, r := range q.Next {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\n", r.Position, r.ID, r.Workflow, r.Priority, apiTime(r.CreatedAt))
		}
		tw.Flush()
	}
	for line := range strings.Lines(out.String()) {
		fmt.Fprintln(c.stdout, strings.TrimRight(line, " \n"))
	}
	return exitOK
}
