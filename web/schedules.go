package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/durable-go/durable"
)

// Schedules: the JSON API and the dashboard page over the engine's
// schedule calls (durable.Engine.CreateSchedule, ...).
//
//	GET  api/schedules                  -> {"schedules": [Schedule...]}
//	POST api/schedules (body: ScheduleSpec with "name") -> {"schedule": Schedule}
//	GET  api/schedules/{name}           -> {"schedule": Schedule}
//	POST api/schedules/{name}/update (body: ScheduleSpec) -> {"schedule": Schedule}
//	POST api/schedules/{name}/pause     -> {"schedule": Schedule}
//	POST api/schedules/{name}/resume    -> {"schedule": Schedule}
//	POST api/schedules/{name}/trigger   -> {"schedule": Schedule, "run_id": "..."}
//	POST api/schedules/{name}/delete    -> {"ok": true}
//
// A bad spec is 400 "bad_request", an unknown schedule 404 "not_found", a
// name taken 409 "conflict".

// ScheduleSpec is a schedule's spec in the JSON API: durable.Schedule
// with durations as Go duration strings ("1h30m") and policies by name.
type ScheduleSpec struct {
	Name       string          `json:"name,omitempty"` // create only
	Workflow   string          `json:"workflow"`
	Input      json.RawMessage `json:"input,omitempty"`
	Cron       string          `json:"cron,omitempty"`
	Zone       string          `json:"zone,omitempty"`
	Every      string          `json:"every,omitempty"`
	Offset     string          `json:"offset,omitempty"`
	Jitter     string          `json:"jitter,omitempty"`
	Grace      string          `json:"grace,omitempty"`
	Overlap    string          `json:"overlap,omitempty"`  // skip (default), buffer-one, allow-all
	CatchUp    string          `json:"catch_up,omitempty"` // latest (default), skip, all
	CatchUpMax int             `json:"catch_up_max,omitempty"`
}

// Schedule is a schedule in the JSON API.
type Schedule struct {
	ScheduleSpec
	RunID     string   `json:"run_id"` // the run that keeps the schedule
	Paused    bool     `json:"paused"`
	Next      string   `json:"next,omitempty"`
	Buffered  string   `json:"buffered,omitempty"`
	Started   int      `json:"started"`
	Skipped   int      `json:"skipped"`
	Missed    int      `json:"missed"`
	Recent    []Firing `json:"recent"`
	CreatedAt string   `json:"created_at"`
	UpdatedAt string   `json:"updated_at"`
}

// Firing is what a schedule did at one slot.
type Firing struct {
	Slot   string `json:"slot"`
	At     string `json:"at"`
	Action string `json:"action"` // started, skipped, buffered, failed
	RunID  string `json:"run_id,omitempty"`
	Manual bool   `json:"manual,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ScheduleOf renders a durable.ScheduleInfo for the API.
func ScheduleOf(in durable.ScheduleInfo) Schedule {
	sp := in.Spec
	s := Schedule{
		ScheduleSpec: ScheduleSpec{Name: in.Name, Workflow: sp.Workflow, Cron: sp.Cron, Zone: sp.Zone,
			Every: dur(sp.Every), Offset: dur(sp.Offset), Jitter: dur(sp.Jitter), Grace: dur(sp.Grace),
			Overlap: sp.Overlap.String(), CatchUp: sp.CatchUp.String(), CatchUpMax: sp.CatchUpMax},
		RunID: in.RunID, Paused: in.Paused, Next: stamp(in.Next), Buffered: stamp(in.Buffered),
		Started: in.Started, Skipped: in.Skipped, Missed: in.Missed, Recent: []Firing{},
		CreatedAt: stamp(in.CreatedAt), UpdatedAt: stamp(in.UpdatedAt),
	}
	if j, ok := sp.Input.(json.RawMessage); ok {
		s.Input = j
	}
	for _, f := range in.Recent {
		s.Recent = append(s.Recent, Firing{Slot: stamp(f.Slot), At: stamp(f.At), Action: f.Action, RunID: f.RunID, Manual: f.Manual, Error: f.Err})
	}
	return s
}

func dur(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// Schedule turns the spec into a durable.Schedule. Errors name the field.
func (sp ScheduleSpec) Schedule() (durable.Schedule, error) {
	s := durable.Schedule{Workflow: sp.Workflow, Cron: sp.Cron, Zone: sp.Zone, CatchUpMax: sp.CatchUpMax}
	if len(sp.Input) > 0 {
		s.Input = sp.Input
	}
	for _, f := range []struct {
		name string
		in   string
		out  *time.Duration
	}{{"every", sp.Every, &s.Every}, {"offset", sp.Offset, &s.Offset}, {"jitter", sp.Jitter, &s.Jitter}, {"grace", sp.Grace, &s.Grace}} {
		if f.in == "" {
			continue
		}
		d, err := time.ParseDuration(f.in)
		if err != nil {
			return s, fmt.Errorf("%s %q: want a duration such as 1h30m", f.name, f.in)
		}
		*f.out = d
	}
	switch sp.Overlap {
	case "", "skip":
		s.Overlap = durable.OverlapSkip
	case "buffer-one":
		s.Overlap = durable.OverlapBufferOne
	case "allow-all":
		s.Overlap = durable.OverlapAllowAll
	default:
		return s, fmt.Errorf("overlap %q: want skip, buffer-one or allow-all", sp.Overlap)
	}
	switch sp.CatchUp {
	case "", "latest":
		s.CatchUp = durable.CatchUpLatest
	case "skip":
		s.CatchUp = durable.CatchUpSkip
	case "all":
		s.CatchUp = durable.CatchUpAll
	default:
		return s, fmt.Errorf("catch_up %q: want latest, skip or all", sp.CatchUp)
	}
	return s, nil
}

func (s *server) scheduleRoutes() {
	for _, a := range []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"GET", "/api/schedules", s.listSchedules},
		{"POST", "/api/schedules", s.change(s.createSchedule)},
		{"GET", "/api/schedules/{name}", s.getSchedule},
		{"POST", "/api/schedules/{name}/{op}", s.change(s.scheduleOp)},
	} {
		s.mux.HandleFunc(a.method+" "+a.path, a.h)
	}
	s.mux.HandleFunc("GET /schedules", s.schedulesPage)
}

// scheduleError writes the response for an error of a schedule call.
func scheduleError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, durable.ErrScheduleExists):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, durable.ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	default:
		engineError(w, err)
	}
}

func (s *server) listSchedules(w http.ResponseWriter, r *http.Request) {
	list, err := s.e.ListSchedules(r.Context())
	if err != nil {
		scheduleError(w, err)
		return
	}
	out := []Schedule{}
	for _, in := range list {
		out = append(out, ScheduleOf(in))
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": out})
}

func (s *server) getSchedule(w http.ResponseWriter, r *http.Request) {
	in, err := s.e.GetSchedule(r.Context(), r.PathValue("name"))
	if err != nil {
		scheduleError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedule": ScheduleOf(in)})
}

// readSpec reads a ScheduleSpec from the request body.
func (s *server) readSpec(w http.ResponseWriter, r *http.Request) (ScheduleSpec, durable.Schedule, bool) {
	var sp ScheduleSpec
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large", "reading the schedule: "+err.Error())
		return sp, durable.Schedule{}, false
	}
	if err := json.Unmarshal(body, &sp); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be a schedule in JSON: "+err.Error())
		return sp, durable.Schedule{}, false
	}
	sched, err := sp.Schedule()
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return sp, sched, false
	}
	return sp, sched, true
}

func (s *server) createSchedule(w http.ResponseWriter, r *http.Request) {
	sp, sched, ok := s.readSpec(w, r)
	if !ok {
		return
	}
	if err := s.e.CreateSchedule(r.Context(), sp.Name, sched); err != nil {
		scheduleError(w, err)
		return
	}
	s.scheduleAfter(w, r, sp.Name, nil)
}

func (s *server) scheduleOp(w http.ResponseWriter, r *http.Request) {
	name, ctx := r.PathValue("name"), r.Context()
	var err error
	extra := map[string]any{}
	switch r.PathValue("op") {
	case "update":
		_, sched, ok := s.readSpec(w, r)
		if !ok {
			return
		}
		err = s.e.UpdateSchedule(ctx, name, sched)
	case "pause":
		err = s.e.PauseSchedule(ctx, name)
	case "resume":
		err = s.e.ResumeSchedule(ctx, name)
	case "trigger":
		var id string
		id, err = s.e.TriggerSchedule(ctx, name)
		extra["run_id"] = id
	case "delete":
		if err = s.e.DeleteSchedule(ctx, name); err == nil {
			writeJSON(w, http.StatusOK, map[string]any{"ok": true})
			return
		}
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path+" (want update, pause, resume, trigger or delete)")
		return
	}
	if err != nil {
		scheduleError(w, err)
		return
	}
	s.scheduleAfter(w, r, name, extra)
}

// scheduleAfter answers a change with the schedule as it is now.
func (s *server) scheduleAfter(w http.ResponseWriter, r *http.Request, name string, extra map[string]any) {
	in, err := s.e.GetSchedule(r.Context(), name)
	if err != nil {
		scheduleError(w, err)
		return
	}
	out := map[string]any{"schedule": ScheduleOf(in)}
	for k, v := range extra {
		out[k] = v
	}
	writeJSON(w, http.StatusOK, out)
}

// schedulesPage serves the dashboard's schedules page.
func (s *server) schedulesPage(w http.ResponseWriter, r *http.Request) {
	p := page{Base: base(r), Title: "Schedules"}
	list, err := s.e.ListSchedules(r.Context())
	if err != nil {
		p.Error = err.Error()
	}
	for _, in := range list {
		p.Schedules = append(p.Schedules, ScheduleOf(in))
	}
	s.render(w, http.StatusOK, "schedules", p)
}
