package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/durable-go/durable"
)

// The dashboard: server-rendered pages (html/template) and two embedded
// static files, no build step and nothing loaded from elsewhere. The
// pages link relative to where they are, so the handler works under any
// mount point. app.js makes the buttons post to the API and refreshes the
// part of the page that changes (#live) on the event stream's events.

//go:embed ui
var uiFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"human":   humanAny,
	"pathesc": url.PathEscape,
	"cut":     cut,
	"lower":   strings.ToLower,
}).ParseFS(uiFiles, "ui/*.html"))

// humanAny formats a time or an API time string for people.
func humanAny(v any) string {
	switch t := v.(type) {
	case time.Time:
		return human(t)
	case string:
		if t == "" {
			return "-"
		}
		if tt, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return human(tt)
		}
		return t
	}
	return fmt.Sprint(v)
}

// cut shortens s to n bytes (on a rune boundary), marking the cut.
func cut(n int, s string) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8RuneStart(s[i]) {
		i--
	}
	return s[:i] + "… (" + fmt.Sprint(len(s)) + " bytes)"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// csp keeps pages from loading or running anything but their own files.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func (s *server) dashboardRoutes() {
	static, _ := fs.Sub(uiFiles, "ui/static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	s.mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	s.mux.HandleFunc("GET /{$}", s.runsPage)
	s.mux.HandleFunc("GET /runs/{id}", s.runPage)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, http.StatusNotFound, "error", page{Base: base(r), Title: "Not found", Error: "There is no page at " + r.URL.Path + "."})
	})
}

// base is the relative path from the page requested to the mount point.
func base(r *http.Request) string {
	n := strings.Count(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if n == 0 {
		return "./"
	}
	return strings.Repeat("../", n)
}

// page is what every template gets.
type page struct {
	Base     string
	Title    string
	ReadOnly bool
	Error    string
	Now      time.Time
	Counts   map[string]int
	Capped   bool
	Figures  *engineFigures
	List     *listView
	Run      *runView
	Queues   []Queue // the queues page (queues.go)
	// Schedules is the schedules page's list (schedules.go).
	Schedules []Schedule
}

// render executes template name into a buffer first, so a failure is a
// clean 500 and not half a page.
func (s *server) render(w http.ResponseWriter, status int, name string, p page) {
	p.ReadOnly = s.opts.ReadOnly
	if p.Now.IsZero() {
		p.Now = s.opts.Now()
	}
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, p); err != nil {
		http.Error(w, "web: render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// listView is the runs page.
type listView struct {
	Runs     []Run
	Status   string
	Workflow string
	Parent   string
	Next     string // query of the next page; "" if none
	Paged    bool   // this is not the first page
	Statuses []string
}

func (s *server) runsPage(w http.ResponseWriter, r *http.Request) {
	p := page{Base: base(r), Title: "Runs"}
	lq, err := parseList(r)
	lv := &listView{Statuses: []string{"running", "parked", "failed", "completed", "canceled"}}
	p.List = lv
	if err != nil {
		p.Error = err.Error()
		s.render(w, http.StatusBadRequest, "runs", p)
		return
	}
	lv.Status, lv.Workflow, lv.Parent, lv.Paged = lq.status, lq.opts.Workflow, lq.opts.Parent, lq.opts.After != ""
	runs, next, err := s.list(r, lq)
	if err != nil {
		p.Error = err.Error()
	}
	lv.Runs = runs
	if next != "" {
		q := r.URL.Query()
		q.Set("after", next)
		lv.Next = "?" + q.Encode()
	}
	if counts, capped, err := s.countRuns(r.Context()); err == nil {
		p.Counts, p.Capped = counts, capped
	}
	st, rt := s.sample()
	p.Figures = &engineFigures{Steps: st.Steps, LoadedRuns: st.LoadedRuns, CachedRuns: st.CachedRuns, Evictions: st.Evictions,
		Transactions: st.Store.Transactions, Commits: st.Store.Commits, rates: rt}
	s.render(w, http.StatusOK, "runs", p)
}

// runView is the run page.
type runView struct {
	Run      Run
	Ops      []opView
	Children []Run
	Terminal bool
	Channel  string // a channel the run receives on, for the send form
}

// opView is one operation (journal position) on the timeline.
type opView struct {
	Position int
	Kind     string
	Name     string
	State    string // completed, failed, canceled, pending
	Started  time.Time
	Ended    time.Time
	Duration string
	Child    string
	Lines    []lineView
}

// lineView is one record of an operation.
type lineView struct {
	What   string
	Time   time.Time
	Detail string
	Error  bool
}

func (s *server) runPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p := page{Base: base(r), Title: "Run " + id}
	d, err := s.detail(r, id)
	if err != nil {
		status := http.StatusInternalServerError
		if isNotFound(err) {
			status = http.StatusNotFound
			err = fmt.Errorf("there is no run %q", id)
		}
		p.Error = err.Error()
		s.render(w, status, "error", p)
		return
	}
	info, _ := s.e.Get(r.Context(), id)
	evs, _ := s.e.History(r.Context(), id)
	rv := &runView{Run: d.Run, Children: d.Children, Terminal: info.Status.Terminal()}
	rv.Ops = timeline(evs, info.CreatedAt)
	for _, op := range d.Run.Pending {
		if op.Kind == "receive" {
			rv.Channel = op.Name
		}
	}
	p.Run = rv
	s.render(w, http.StatusOK, "run", p)
}

// timeline groups a run's events by operation. An operation's start is
// taken as the end of the operation before it (or the run's creation):
// the journal records when operations end, and a workflow runs its
// operations one after another unless it uses Go.
func timeline(evs []durable.Event, created time.Time) []opView {
	var ops []opView
	prevEnd := created
	for _, ev := range evs {
		if len(ops) == 0 || ops[len(ops)-1].Position != ev.Position {
			ops = append(ops, opView{Position: ev.Position, Kind: ev.Kind, Name: ev.Name, State: "pending", Started: prevEnd})
		}
		op := &ops[len(ops)-1]
		l := lineView{What: ev.What, Time: ev.Time, Detail: ev.Detail}
		switch {
		case ev.What == "completed":
			op.State = "completed"
		case ev.What == "failed":
			op.State, l.Error = "failed", true
		case ev.What == "canceled":
			op.State, l.Error = "canceled", true
		case strings.HasPrefix(ev.What, "attempt") && strings.Contains(ev.What, "failed"):
			l.Error = true
		case ev.Kind == "child" && ev.What == "started":
			op.Child = ev.Detail
			l.Detail = ""
		case ev.Kind == "now" || ev.Kind == "timer":
			op.State = "completed"
		}
		if !ev.Written.IsZero() {
			op.Ended = ev.Written
		}
		op.Lines = append(op.Lines, l)
		if op.State != "pending" && !op.Ended.IsZero() {
			if !op.Started.IsZero() && !op.Ended.Before(op.Started) {
				op.Duration = span(op.Ended.Sub(op.Started))
			}
			prevEnd = op.Ended
		}
	}
	return ops
}

// span formats a duration for people: 120ms, 4.2s, 3m10s, 2h5m, 3d4h.
func span(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
