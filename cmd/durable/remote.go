package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/durable-go/durable/internal/runtext"
	"github.com/durable-go/durable/web"
)

// Remote mode: with -addr, the commands talk to a running application
// through the JSON API of package web, wherever the application mounted
// it (-addr http://host:port/durable).

// remote is a client of one application's API.
type remote struct {
	base string // the mount point, with a trailing slash
	hc   *http.Client
}

func newRemote(addr string) (*remote, error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-addr %q: want the URL where the application mounts the web handler, such as http://localhost:8080/durable", addr)
	}
	return &remote{base: strings.TrimSuffix(u.String(), "/") + "/", hc: &http.Client{}}, nil
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Msg    string `json:"error"`
	Code   string `json:"code"`
}

func (e *apiError) Error() string { return e.Msg + " (" + e.Code + ")" }

// call makes a request and decodes the JSON answer into out (if not nil).
// An error answer is an *apiError.
func (c *cli) call(method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(c.ctx, method, c.remote.base+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.remote.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(b, ae) != nil || ae.Msg == "" {
			ae.Msg, ae.Code = fmt.Sprintf("%s %s: %s", method, req.URL, resp.Status), "http"
		}
		return ae
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// failed reports an error of a remote call and returns exitFailure.
func (c *cli) failed(what string, err error) int {
	return c.errorf("%s: %v", what, err)
}

// printJSON writes v indented on stdout.
func (c *cli) printJSON(v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return c.errorf("encode: %v", err)
	}
	fmt.Fprintf(c.stdout, "%s\n", b)
	return exitOK
}

// apiTime formats an API time like runtext.Time.
func apiTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "-"
	}
	return runtext.Time(t)
}

// printRuns prints runs as a table, like the FILE mode list.
func (c *cli) printRuns(runs []web.Run) {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKFLOW\tSTATUS\tCREATED\tUPDATED\tPARENT\tNOW / ERROR")
	for _, r := range runs {
		parent, now := r.Parent, r.WaitingFor
		if parent == "" {
			parent = "-"
		}
		if now == "" && (r.Status == "failed" || r.Status == "parked") {
			now = runtext.FirstLine(r.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workflow, r.Status, apiTime(r.CreatedAt), apiTime(r.UpdatedAt), parent, now)
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		fmt.Fprintln(c.stdout, strings.TrimRight(line, " \n"))
	}
}

// remoteList serves list with -addr.
func (c *cli) remoteList(o listFlags) int {
	q := url.Values{}
	for k, v := range map[string]string{"status": o.status, "workflow": o.workflow, "parent": o.parent, "after": o.after} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.limit > 0 {
		q.Set("limit", fmt.Sprint(o.limit))
	}
	var page struct {
		Runs []web.Run `json:"runs"`
		Next string    `json:"next"`
	}
	if err := c.call("GET", "api/runs?"+q.Encode(), nil, &page); err != nil {
		return c.failed("list runs", err)
	}
	if c.json {
		return c.printJSON(page)
	}
	c.printRuns(page.Runs)
	if len(page.Runs) == 0 {
		fmt.Fprintf(c.stderr, "durable: no runs match\n")
	}
	if page.Next != "" {
		fmt.Fprintf(c.stderr, "durable: more runs match; the next page: -after %s\n", page.Next)
	}
	return exitOK
}

// runDetail is the answer of GET api/runs/{id}.
type runDetail struct {
	Run      web.Run     `json:"run"`
	Events   []web.Event `json:"events"`
	Children []web.Run   `json:"children"`
}

// remoteShow serves show with -addr.
func (c *cli) remoteShow(id string) int {
	var d runDetail
	if err := c.call("GET", "api/runs/"+url.PathEscape(id), nil, &d); err != nil {
		return c.failed(fmt.Sprintf("run %q", id), err)
	}
	if c.json {
		return c.printJSON(d)
	}
	w, r := c.stdout, d.Run
	field := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-10s %s\n", name, fmt.Sprintf(format, args...))
	}
	field("run", "%s", r.ID)
	field("workflow", "%s", r.Workflow)
	field("status", "%s", r.Status)
	if r.WaitingFor != "" {
		field("now", "%s", r.WaitingFor)
	}
	for _, op := range r.Pending {
		s := fmt.Sprintf("#%d %s %q", op.Position, op.Kind, op.Name)
		if op.Attempt > 0 {
			s += fmt.Sprintf(" attempt %d", op.Attempt)
		}
		if op.NextAttempt != "" {
			s += " next at " + apiTime(op.NextAttempt)
		}
		if op.Due != "" {
			s += " due " + apiTime(op.Due)
		}
		if op.Child != "" {
			s += " child " + op.Child
		}
		if op.LastError != "" {
			s += ": last error: " + runtext.FirstLine(op.LastError)
		}
		field("pending", "%s", s)
	}
	if r.Error != "" {
		field("error", "%s", strings.ReplaceAll(r.Error, "\n", "\n"+strings.Repeat(" ", 11)))
	}
	if d := r.Diff; d != nil {
		field("diverged", "at position %d: the journal has %s, the code %s %s", d.Position, d.Recorded, map[bool]string{true: "called", false: "returned"}[d.Called != ""], d.Called)
		if d.Location != "" {
			field("", "at %s", d.Location)
		}
	}
	if r.Parent != "" {
		field("parent", "%s", r.Parent)
	}
	if r.Input != "" {
		field("input", "%s", r.Input)
	}
	if r.Output != "" {
		field("output", "%s", r.Output)
	}
	field("created", "%s", apiTime(r.CreatedAt))
	field("updated", "%s", apiTime(r.UpdatedAt))
	if r.WakeAt != "" {
		field("wakes at", "%s", apiTime(r.WakeAt))
	}
	if r.Deadline != "" {
		field("deadline", "%s", apiTime(r.Deadline))
	}
	if r.CancelRequested {
		field("cancel", "requested")
	}
	if r.Inbox > 0 {
		var parts []string
		for ch, n := range r.InboxChannels {
			parts = append(parts, fmt.Sprintf("%s: %d", ch, n))
		}
		field("inbox", "%s", strings.Join(parts, ", "))
	}
	if len(d.Children) > 0 {
		var ks []string
		for _, k := range d.Children {
			ks = append(ks, fmt.Sprintf("%s (%s)", k.ID, k.Status))
		}
		field("children", "%s", strings.Join(ks, ", "))
	}
	if len(d.Events) == 0 {
		fmt.Fprintf(w, "\ntimeline: no records yet\n")
		return exitOK
	}
	fmt.Fprintf(w, "\ntimeline (%s):\n", plural(len(d.Events), "record", "records"))
	for _, ev := range d.Events {
		s := fmt.Sprintf("%4d.%d  %-7s", ev.Position, ev.Seq, ev.Kind)
		if ev.Name != "" {
			s += fmt.Sprintf(" %q", ev.Name)
		}
		s += "  " + ev.What
		if ev.Time != "" {
			s += " " + apiTime(ev.Time)
		}
		if ev.Detail != "" {
			s += ": " + strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(ev.Detail)
		}
		if ev.Written != "" {
			s += "  [" + apiTime(ev.Written) + "]"
		}
		fmt.Fprintln(w, s)
	}
	return exitOK
}

// remoteChange serves cancel and resume with -addr.
func (c *cli) remoteChange(verb, id string) int {
	var out struct {
		Run web.Run `json:"run"`
	}
	if err := c.call("POST", "api/runs/"+url.PathEscape(id)+"/"+verb, nil, &out); err != nil {
		return c.failed(fmt.Sprintf("%s run %q", verb, id), err)
	}
	if c.json {
		return c.printJSON(out)
	}
	fmt.Fprintf(c.stdout, "run %q: %s", id, out.Run.Status)
	if out.Run.WaitingFor != "" {
		fmt.Fprintf(c.stdout, ", %s", out.Run.WaitingFor)
	}
	fmt.Fprintln(c.stdout)
	return exitOK
}

// send posts a message (JSON; "-" reads it from stdin) to a run's channel.
func (c *cli) send(args []string) int {
	fs := c.flags("send")
	fs.BoolVar(&c.json, "json", c.json, "print the answer as JSON")
	pos, code, ok := c.parse(fs, args, 3)
	if !ok {
		return code
	}
	if c.remote == nil {
		return c.needAddr("send")
	}
	id, channel, msg := pos[0], pos[1], pos[2]
	if msg == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return c.errorf("read the message from stdin: %v", err)
		}
		msg = string(b)
	}
	if !json.Valid([]byte(msg)) {
		fmt.Fprintf(c.stderr, "durable send: the message must be JSON, such as '{\"approved\": true}' or '\"text\"'\n")
		return exitUsage
	}
	if err := c.call("POST", "api/runs/"+url.PathEscape(id)+"/send/"+url.PathEscape(channel), strings.NewReader(msg), nil); err != nil {
		return c.failed(fmt.Sprintf("send to run %q on %q", id, channel), err)
	}
	if c.json {
		return c.printJSON(map[string]bool{"ok": true})
	}
	fmt.Fprintf(c.stdout, "run %q: message stored on %q\n", id, channel)
	return exitOK
}

// watch prints run changes as the application reports them, until it is
// interrupted or the application goes away.
func (c *cli) watch(args []string) int {
	fs := c.flags("watch")
	fs.BoolVar(&c.json, "json", c.json, "print each change as a JSON run, one per line")
	npos := 0 // an optional run id
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			npos = -1
		}
	}
	pos, code, ok := c.parse(fs, args, npos)
	if !ok {
		return code
	}
	if c.remote == nil {
		return c.needAddr("watch")
	}
	path := "api/events"
	if len(pos) > 1 {
		fmt.Fprintf(c.stderr, "durable watch: at most one run id\n")
		return exitUsage
	}
	if len(pos) == 1 {
		path += "?run=" + url.QueryEscape(pos[0])
	}
	req, err := http.NewRequestWithContext(c.ctx, "GET", c.remote.base+path, nil)
	if err != nil {
		return c.errorf("%v", err)
	}
	resp, err := c.remote.hc.Do(req)
	if err != nil {
		return c.failed("watch", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ae := &apiError{}
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, ae) != nil {
			ae.Msg, ae.Code = resp.Status, "http"
		}
		return c.failed("watch", ae)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
			if event == "ready" {
				fmt.Fprintf(c.stderr, "durable: watching %s (Ctrl-C to stop)\n", c.remote.base)
			}
		case strings.HasPrefix(line, "data: ") && event == "run":
			data := strings.TrimPrefix(line, "data: ")
			if c.json {
				fmt.Fprintln(c.stdout, data)
				continue
			}
			var r web.Run
			if json.Unmarshal([]byte(data), &r) != nil {
				continue
			}
			now := r.WaitingFor
			if now == "" {
				now = runtext.FirstLine(r.Error)
			}
			fmt.Fprintf(c.stdout, "%s  %s  %s  %s  %s\n", apiTime(r.UpdatedAt), r.ID, r.Workflow, r.Status, now)
		case line == "":
			event = ""
		}
	}
	if c.ctx.Err() != nil {
		return exitOK
	}
	if err := sc.Err(); err != nil {
		return c.failed("watch", err)
	}
	return c.errorf("watch: the application closed the stream")
}

// needAddr refuses a command that only works against a running
// application.
func (c *cli) needAddr(name string) int {
	fmt.Fprintf(c.stderr, "durable %s: needs -addr URL (a running application's web handler): durable -addr http://localhost:8080/durable %s ...\n", name, name)
	return exitUsage
}
