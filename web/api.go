package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/durable-go/durable"
)

// maxLimit bounds a page of api/runs.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

// listQuery is a parsed api/runs query.
type listQuery struct {
	opts           durable.ListOptions
	after, before  time.Time // created after / before; zero: no bound
	status, filter string
}

// parseList reads the query of api/runs (and of the dashboard's list).
func parseList(r *http.Request) (listQuery, error) {
	q := r.URL.Query()
	var lq listQuery
	lq.opts.Limit = defaultLimit
	if s := q.Get("status"); s != "" {
		st, ok := statusByName[s]
		if !ok {
			return lq, fmt.Errorf("status %q: want running, parked, completed, failed or canceled", s)
		}
		lq.opts.Status = st
		lq.status = s
	}
	lq.opts.Workflow = q.Get("workflow")
	lq.opts.Parent = q.Get("parent")
	lq.opts.After = q.Get("after")
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return lq, fmt.Errorf("limit %q: want a number from 1 to %d", s, maxLimit)
		}
		lq.opts.Limit = n
	}
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"created_after", &lq.after}, {"created_before", &lq.before}} {
		if s := q.Get(f.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return lq, fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", f.name, s)
			}
			*f.t = t
		}
	}
	return lq, nil
}

var statusByName = map[string]durable.Status{
	"running": durable.StatusRunning, "parked": durable.StatusParked, "completed": durable.StatusCompleted,
	"failed": durable.StatusFailed, "canceled": durable.StatusCanceled,
}

// list returns a page of runs for lq, with what unfinished ones wait for,
// and the cursor of the next page ("" if none). The created-at bounds are
// applied over the engine's pages, so a page may span several of them.
func (s *server) list(r *http.Request, lq listQuery) ([]Run, string, error) {
	ctx := r.Context()
	want := lq.opts.Limit
	opts := lq.opts
	now := s.opts.Now()
	runs := []Run{}
	for {
		page, err := s.e.List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		for i, info := range page.Runs {
			if (!lq.after.IsZero() && !info.CreatedAt.After(lq.after)) || (!lq.before.IsZero() && !info.CreatedAt.Before(lq.before)) {
				continue
			}
			if !info.Status.Terminal() {
				if full, err := s.e.Get(ctx, info.ID); err == nil {
					info = full
				}
			}
			r := RunOf(info, now)
			r.Input, r.Output = "", "" // a list stays small
			runs = append(runs, r)
			if len(runs) == want {
				if i < len(page.Runs)-1 || page.NextAfter != "" {
					return runs, info.ID, nil
				}
				return runs, "", nil
			}
		}
		if page.NextAfter == "" {
			return runs, "", nil
		}
		opts.After = page.NextAfter
	}
}

// listRuns serves GET api/runs.
func (s *server) listRuns(w http.ResponseWriter, r *http.Request) {
	lq, err := parseList(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	runs, next, err := s.list(r, lq)
	if err != nil {
		engineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs, "next": next})
}

// runDetail is the response of GET api/runs/{id}.
type runDetail struct {
	Run      Run     `json:"run"`
	Events   []Event `json:"events"`
	Children []Run   `json:"children"`
}

// detail reads run id with its timeline and children.
func (s *server) detail(r *http.Request, id string) (runDetail, error) {
	ctx := r.Context()
	info, err := s.e.Get(ctx, id)
	if err != nil {
		return runDetail{}, err
	}
	now := s.opts.Now()
	d := runDetail{Run: RunOf(info, now), Events: []Event{}, Children: []Run{}}
	evs, err := s.e.History(ctx, id)
	if err != nil && !errors.Is(err, durable.ErrNotFound) {
		return d, err
	}
	for _, ev := range evs {
		d.Events = append(d.Events, EventOf(ev))
	}
	page, err := s.e.List(ctx, durable.ListOptions{Parent: id, Limit: maxLimit})
	if err != nil {
		return d, err
	}
	for _, c := range page.Runs {
		if !c.Status.Terminal() {
			if full, err := s.e.Get(ctx, c.ID); err == nil {
				c = full
			}
		}
		d.Children = append(d.Children, RunOf(c, now))
	}
	return d, nil
}

// getRun serves GET api/runs/{id}.
func (s *server) getRun(w http.ResponseWriter, r *http.Request) {
	d, err := s.detail(r, r.PathValue("id"))
	if err != nil {
		engineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// runAfter answers a change with the run as it is now.
func (s *server) runAfter(w http.ResponseWriter, r *http.Request, id string) {
	info, err := s.e.Get(r.Context(), id)
	if err != nil {
		engineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": RunOf(info, s.opts.Now())})
}

// cancel serves POST api/runs/{id}/cancel.
func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.e.Cancel(r.Context(), id); err != nil {
		engineError(w, err)
		return
	}
	s.runAfter(w, r, id)
}

// resume serves POST api/runs/{id}/resume.
func (s *server) resume(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.e.Resume(r.Context(), id); err != nil {
		engineError(w, err)
		return
	}
	s.runAfter(w, r, id)
}

// send serves POST api/runs/{id}/send/{channel}: the body is the message,
// in JSON.
func (s *server) send(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("the message is larger than %d bytes", mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "reading the message: "+err.Error())
		return
	}
	if len(body) == 0 || !json.Valid(body) {
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be the message in JSON")
		return
	}
	if err := durable.Send(r.Context(), s.e, r.PathValue("id"), r.PathValue("channel"), json.RawMessage(body)); err != nil {
		engineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func isNotFound(err error) bool { return errors.Is(err, durable.ErrNotFound) }
