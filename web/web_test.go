package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/web"
)

type order struct {
	Item string `json:"item"`
	Qty  int    `json:"qty"`
}

// app is an engine with a few workflows, served by the handler under
// /durable/.
type app struct {
	t    *testing.T
	path string
	cfg  *durable.Config
	e    *durable.Engine
	srv  *httptest.Server
	opts *web.Options
}

var (
	renamed atomic.Bool

	waiter = durable.Define("waiter", func(ctx durable.Context, _ int) (string, error) {
		o, err := durable.Receive[order](ctx, "order")
		return fmt.Sprintf("%d×%s", o.Qty, o.Item), err
	})
	sleeper = durable.Define("sleeper", func(ctx durable.Context, _ int) (int, error) {
		return 0, durable.Sleep(ctx, time.Hour)
	})
	quick = durable.Define("quick", func(ctx durable.Context, n int) (int, error) {
		return durable.Step(ctx, "double", func(context.Context) (int, error) { return 2 * n, nil })
	})
	parent = durable.Define("parent", func(ctx durable.Context, n int) (int, error) {
		return durable.RunChild(ctx, quick, "", n)
	})
	diverge = durable.Define("diverge", func(ctx durable.Context, _ int) (int, error) {
		name := "a"
		if renamed.Load() {
			name = "b"
		}
		if _, err := durable.Step(ctx, name, func(context.Context) (int, error) { return 1, nil }); err != nil {
			return 0, err
		}
		return durable.Receive[int](ctx, "go")
	})
)

func newApp(t *testing.T, opts *web.Options) *app {
	t.Helper()
	a := &app{t: t, path: filepath.Join(t.TempDir(), "app.db"), opts: opts}
	a.cfg = &durable.Config{
		Workflows:       []durable.Definition{waiter, sleeper, quick, parent, diverge},
		MaxPayloadBytes: 1024,
		Logger:          slog.New(slog.DiscardHandler),
	}
	a.open()
	t.Cleanup(func() { a.close() })
	return a
}

func (a *app) open() {
	a.t.Helper()
	e, err := durable.Open(a.path, a.cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	a.e = e
	mux := http.NewServeMux()
	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, a.opts)))
	a.srv = httptest.NewServer(mux)
}

func (a *app) close() {
	if a.srv != nil {
		a.srv.Close()
		a.e.Close()
		a.srv = nil
	}
}

// restart is a crash and a resume: a new engine and server on the file.
func (a *app) restart() {
	a.close()
	a.open()
}

// do makes a request and decodes its JSON body into out (if not nil),
// checking the content type; it returns the status.
func (a *app) do(method, path, body string, out any, hdr ...string) int {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+"/durable/"+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		a.t.Errorf("%s %s: Content-Type %q, want application/json (body %s)", method, path, ct, b)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		a.t.Errorf("%s %s: body is not a JSON object: %s", method, path, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

type apiErr struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// wantErr makes a request that must fail with status and code.
func (a *app) wantErr(method, path, body string, status int, code string, hdr ...string) apiErr {
	a.t.Helper()
	var e apiErr
	if got := a.do(method, path, body, &e, hdr...); got != status || e.Code != code || e.Error == "" {
		a.t.Errorf("%s %s: %d %+v, want %d %q", method, path, got, e, status, code)
	}
	return e
}

// start starts a run and returns its id.
func start[I, O any](a *app, w *durable.Workflow[I, O], id string, in I) *durable.Handle[O] {
	a.t.Helper()
	h, err := durable.Start(context.Background(), a.e, w, id, in)
	if err != nil {
		a.t.Fatal(err)
	}
	return h
}

// waitRun polls the API until ok says run id got there. The engine works
// in the background and the API offers the event stream, which
// TestEvents checks; here a poll keeps each test simple.
func (a *app) waitRun(id string, ok func(web.Run) bool) web.Run {
	a.t.Helper()
	var d struct{ Run web.Run }
	for i := 0; i < 5000; i++ {
		if a.do("GET", "api/runs/"+url.PathEscape(id), "", &d) == 200 && ok(d.Run) {
			return d.Run
		}
		time.Sleep(2 * time.Millisecond)
	}
	a.t.Fatalf("run %q never got there: %+v", id, d.Run)
	return d.Run
}

func waiting(kind string) func(web.Run) bool {
	return func(r web.Run) bool { return len(r.Pending) > 0 && r.Pending[len(r.Pending)-1].Kind == kind }
}

func status(s string) func(web.Run) bool { return func(r web.Run) bool { return r.Status == s } }

// parkOne makes run id of diverge parked: it records step "a", then the
// code is changed to call step "b" and the engine restarts.
func (a *app) parkOne(id string) {
	a.t.Helper()
	renamed.Store(false)
	start(a, diverge, id, 0)
	a.waitRun(id, waiting("receive"))
	renamed.Store(true)
	a.restart()
	// A run waiting for a message is not loaded at Open; a message (on
	// another channel) loads it, and its replay parks it.
	if err := durable.Send(context.Background(), a.e, id, "nudge", 0); err != nil {
		a.t.Fatal(err)
	}
	a.waitRun(id, status("parked"))
}

type listBody struct {
	Runs []web.Run `json:"runs"`
	Next string    `json:"next"`
}

func TestListRuns(t *testing.T) {
	a := newApp(t, nil)
	h := start(a, quick, "q1", 1)
	if _, err := h.Result(context.Background()); err != nil {
		t.Fatal(err)
	}
	start(a, sleeper, "s1", 0)
	start(a, waiter, "w1", 0)
	ph := start(a, parent, "p1", 4)
	if _, err := ph.Result(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.waitRun("s1", waiting("sleep"))
	a.waitRun("w1", waiting("receive"))

	var l listBody
	if got := a.do("GET", "api/runs", "", &l); got != 200 || len(l.Runs) != 5 || l.Next != "" {
		t.Fatalf("list: %d %+v", got, l)
	}
	byID := map[string]web.Run{}
	for _, r := range l.Runs {
		byID[r.ID] = r
		if _, err := time.Parse(time.RFC3339, r.CreatedAt); err != nil {
			t.Errorf("created_at %q: %v", r.CreatedAt, err)
		}
	}
	if r := byID["s1"]; r.Status != "running" || !strings.HasPrefix(r.WaitingFor, "sleeping until") {
		t.Errorf("sleeping run: %+v", r)
	}
	if r := byID["w1"]; r.WaitingFor != `waiting for a message on "order"` {
		t.Errorf("waiting run: %+v", r)
	}
	if r := byID["p1/0"]; r.Parent != "p1" || r.Status != "completed" {
		t.Errorf("child run: %+v", r)
	}

	// Filters and the cursor.
	if a.do("GET", "api/runs?status=running", "", &l); len(l.Runs) != 2 {
		t.Errorf("status=running: %+v", l.Runs)
	}
	if a.do("GET", "api/runs?workflow=quick", "", &l); len(l.Runs) != 2 {
		t.Errorf("workflow=quick: %+v", l.Runs)
	}
	if a.do("GET", "api/runs?parent=p1", "", &l); len(l.Runs) != 1 || l.Runs[0].ID != "p1/0" {
		t.Errorf("parent=p1: %+v", l.Runs)
	}
	var ids []string
	for after := ""; ; {
		a.do("GET", "api/runs?limit=2&after="+url.QueryEscape(after), "", &l)
		for _, r := range l.Runs {
			ids = append(ids, r.ID)
		}
		if l.Next == "" {
			break
		}
		after = l.Next
	}
	if strings.Join(ids, ",") != "p1,p1/0,q1,s1,w1" {
		t.Errorf("paging gave %v", ids)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if a.do("GET", "api/runs?created_after="+future, "", &l); len(l.Runs) != 0 {
		t.Errorf("created_after the future: %+v", l.Runs)
	}
	if a.do("GET", "api/runs?limit=1&created_before="+future, "", &l); len(l.Runs) != 1 || l.Next != "p1" {
		t.Errorf("created_before the future, limit 1: %+v", l)
	}

	// Bad queries.
	for _, q := range []string{"status=sleeping", "limit=0", "limit=x", "limit=100000", "created_after=yesterday", "created_before=2026-13-01"} {
		a.wantErr("GET", "api/runs?"+q, "", 400, "bad_request")
	}
}

func TestGetRun(t *testing.T) {
	a := newApp(t, nil)
	h := start(a, parent, "p", 3)
	if _, err := h.Result(context.Background()); err != nil {
		t.Fatal(err)
	}
	var d struct {
		Run      web.Run     `json:"run"`
		Events   []web.Event `json:"events"`
		Children []web.Run   `json:"children"`
	}
	if got := a.do("GET", "api/runs/p", "", &d); got != 200 {
		t.Fatalf("status %d", got)
	}
	if d.Run.ID != "p" || d.Run.Status != "completed" || d.Run.Input != "3" || d.Run.Output != "6" || len(d.Children) != 1 || d.Children[0].ID != "p/0" {
		t.Errorf("run: %+v children %+v", d.Run, d.Children)
	}
	if len(d.Events) != 2 || d.Events[0].Kind != "child" || d.Events[1].Detail != "6" || d.Events[1].Written == "" {
		t.Errorf("events: %+v", d.Events)
	}
	// A child's id holds a slash: escaped in the path.
	if got := a.do("GET", "api/runs/"+url.PathEscape("p/0"), "", &d); got != 200 || d.Run.Parent != "p" {
		t.Errorf("child: %d %+v", got, d.Run)
	}
	a.wantErr("GET", "api/runs/nope", "", 404, "not_found")
	a.wantErr("GET", "api/nothing", "", 404, "not_found")
	a.wantErr("POST", "api/runs", "", 405, "method_not_allowed")
	a.wantErr("DELETE", "api/runs/p", "", 405, "method_not_allowed")
	a.wantErr("GET", "api/runs/p/cancel", "", 405, "method_not_allowed")
	a.wantErr("GET", "api/runs/p/send/x", "", 405, "method_not_allowed")
	a.wantErr("POST", "api/stats", "", 405, "method_not_allowed")
}

func TestCancelAndResume(t *testing.T) {
	a := newApp(t, nil)
	start(a, sleeper, "s", 0)
	a.waitRun("s", waiting("sleep"))
	var r struct{ Run web.Run }
	if got := a.do("POST", "api/runs/s/cancel", "", &r); got != 200 || r.Run.ID != "s" || !r.Run.CancelRequested {
		t.Errorf("cancel: %d %+v", got, r.Run)
	}
	a.waitRun("s", status("canceled"))
	a.do("POST", "api/runs/s/cancel", "", &r) // canceling a canceled run does nothing
	if r.Run.Status != "canceled" {
		t.Errorf("second cancel: %+v", r.Run)
	}

	h := start(a, quick, "q", 1)
	h.Result(context.Background())
	a.wantErr("POST", "api/runs/q/cancel", "", 409, "conflict")
	a.wantErr("POST", "api/runs/q/resume", "", 409, "conflict")
	a.wantErr("POST", "api/runs/nope/cancel", "", 404, "not_found")
	a.wantErr("POST", "api/runs/nope/resume", "", 404, "not_found")

	// A parked run shows its diff; Resume with fixed code finishes it;
	// Cancel of another parked run ends it.
	a.parkOne("d1")
	a.parkOne("d2")
	run := a.waitRun("d1", status("parked"))
	if run.Diff == nil || run.Diff.Recorded != `step "a"` || run.Diff.Called != `step "b"` || !strings.Contains(run.Diff.Location, "web_test.go:") {
		t.Fatalf("parked run's diff: %+v", run.Diff)
	}
	renamed.Store(false)
	if got := a.do("POST", "api/runs/d1/resume", "", &r); got != 200 || r.Run.Status == "parked" {
		t.Errorf("resume: %d %+v", got, r.Run)
	}
	a.waitRun("d1", waiting("receive"))
	if got := a.do("POST", "api/runs/d1/send/go", "7", nil); got != 200 {
		t.Errorf("send: %d", got)
	}
	a.waitRun("d1", status("completed"))
	if got := a.do("POST", "api/runs/d2/cancel", "", &r); got != 200 || r.Run.Status != "canceled" {
		t.Errorf("cancel of a parked run: %d %+v", got, r.Run)
	}
}

func TestSend(t *testing.T) {
	a := newApp(t, &web.Options{MaxBodyBytes: 4096})
	h := start(a, waiter, "w", 0)
	a.waitRun("w", waiting("receive"))
	a.wantErr("POST", "api/runs/w/send/order", `{"item":`, 400, "bad_request")
	a.wantErr("POST", "api/runs/w/send/order", ``, 400, "bad_request")
	a.wantErr("POST", "api/runs/w/send/order", `{"item":"`+strings.Repeat("x", 2000)+`"}`, 413, "payload_too_large")
	a.wantErr("POST", "api/runs/w/send/order", `{"item":"`+strings.Repeat("x", 5000)+`"}`, 413, "payload_too_large")
	a.wantErr("POST", "api/runs/nope/send/order", `{}`, 404, "not_found")
	var ok struct{ OK bool }
	if got := a.do("POST", "api/runs/w/send/order", `{"item":"book","qty":2}`, &ok); got != 200 || !ok.OK {
		t.Fatalf("send: %d %+v", got, ok)
	}
	if got, err := h.Result(context.Background()); err != nil || got != "2×book" {
		t.Fatalf("Result = %q, %v", got, err)
	}
	a.wantErr("POST", "api/runs/w/send/order", `{}`, 409, "conflict")
}

func TestReadOnly(t *testing.T) {
	a := newApp(t, &web.Options{ReadOnly: true})
	start(a, sleeper, "s", 0)
	a.waitRun("s", waiting("sleep"))
	a.wantErr("POST", "api/runs/s/cancel", "", 403, "forbidden")
	a.wantErr("POST", "api/runs/s/resume", "", 403, "forbidden")
	a.wantErr("POST", "api/runs/s/send/x", "1", 403, "forbidden")
	if info, _ := a.e.Get(context.Background(), "s"); info.CancelRequested {
		t.Error("a read-only cancel changed the run")
	}
	var l listBody
	if got := a.do("GET", "api/runs", "", &l); got != 200 || len(l.Runs) != 1 {
		t.Errorf("list in read-only mode: %d %+v", got, l)
	}
}

func TestAuthorize(t *testing.T) {
	var calls atomic.Int32
	a := newApp(t, &web.Options{Authorize: func(r *http.Request) error {
		calls.Add(1)
		if r.Header.Get("X-Token") != "secret" {
			return errors.New("a valid X-Token is needed")
		}
		return nil
	}})
	start(a, sleeper, "s", 0)
	e := a.wantErr("GET", "api/runs", "", 403, "forbidden")
	if !strings.Contains(e.Error, "X-Token") {
		t.Errorf("error %q does not say why", e.Error)
	}
	a.wantErr("POST", "api/runs/s/cancel", "", 403, "forbidden")
	a.wantErr("GET", "api/nothing", "", 403, "forbidden") // before routing
	var l listBody
	if got := a.do("GET", "api/runs", "", &l, "X-Token", "secret"); got != 200 {
		t.Errorf("authorized list: %d", got)
	}
	if got := a.do("POST", "api/runs/s/cancel", "", nil, "X-Token", "secret"); got != 200 {
		t.Errorf("authorized cancel: %d", got)
	}
	if n := calls.Load(); n != 5 {
		t.Errorf("Authorize called %d times for 5 requests", n)
	}
}

func TestCrossOrigin(t *testing.T) {
	a := newApp(t, nil)
	start(a, sleeper, "s", 0)
	a.waitRun("s", waiting("sleep"))
	a.wantErr("POST", "api/runs/s/cancel", "", 403, "forbidden", "Sec-Fetch-Site", "cross-site")
	a.wantErr("POST", "api/runs/s/cancel", "", 403, "forbidden", "Origin", "https://evil.example")
	a.wantErr("POST", "api/runs/s/send/x", "1", 403, "forbidden", "Sec-Fetch-Site", "same-site")
	if info, _ := a.e.Get(context.Background(), "s"); info.CancelRequested {
		t.Fatal("a cross-origin cancel changed the run")
	}
	var l listBody
	if got := a.do("GET", "api/runs", "", &l, "Sec-Fetch-Site", "cross-site"); got != 200 {
		t.Errorf("a cross-origin GET: %d", got)
	}
	if got := a.do("POST", "api/runs/s/cancel", "", nil, "Sec-Fetch-Site", "same-origin"); got != 200 {
		t.Errorf("a same-origin cancel: %d", got)
	}
}

func TestStats(t *testing.T) {
	a := newApp(t, nil)
	for i := range 3 {
		h := start(a, quick, fmt.Sprint("q", i), i)
		h.Result(context.Background())
	}
	start(a, sleeper, "s", 0)
	a.waitRun("s", waiting("sleep"))
	var st struct {
		Runs   map[string]int `json:"runs"`
		Engine struct {
			Steps                 uint64  `json:"steps"`
			LoadedRuns            int     `json:"loaded_runs"`
			Transactions          uint64  `json:"transactions"`
			CommitsPerTransaction float64 `json:"commits_per_transaction"`
			CommitMs              float64 `json:"commit_ms"`
		} `json:"engine"`
	}
	if got := a.do("GET", "api/stats", "", &st); got != 200 {
		t.Fatalf("stats: %d", got)
	}
	if st.Runs["completed"] != 3 || st.Runs["running"] != 1 || st.Runs["parked"] != 0 {
		t.Errorf("runs by status: %v", st.Runs)
	}
	e := st.Engine
	if e.Steps != 3 || e.LoadedRuns != 1 || e.Transactions == 0 || e.CommitsPerTransaction < 1 || e.CommitMs <= 0 {
		t.Errorf("engine figures: %+v", e)
	}
}

// TestEvents reads the event stream while a run starts and finishes.
func TestEvents(t *testing.T) {
	a := newApp(t, &web.Options{PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.srv.URL+"/durable/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (string, string) {
		t.Helper()
		var ev, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && ev != "":
				return ev, data
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", ""
	}
	if ev, _ := next(); ev != "ready" {
		t.Fatalf("first event %q", ev)
	}
	start(a, waiter, "w", 0)
	seen := map[string]bool{}
	for !seen["running"] {
		if ev, data := next(); ev == "run" {
			var r web.Run
			json.Unmarshal([]byte(data), &r)
			if r.ID == "w" {
				seen[r.Status] = true
			}
		}
	}
	if err := durable.Send(context.Background(), a.e, "w", "order", order{Item: "pen", Qty: 1}); err != nil {
		t.Fatal(err)
	}
	for !seen["completed"] {
		if ev, data := next(); ev == "run" {
			var r web.Run
			json.Unmarshal([]byte(data), &r)
			if r.ID == "w" {
				seen[r.Status] = true
			}
		}
	}
}
