package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/durable-go/durable/web"
)

type scheduleResp struct {
	Schedule web.Schedule `json:"schedule"`
	RunID    string       `json:"run_id"`
}

// The schedules API: create, get, list, trigger, pause, resume, update,
// delete, and the errors of bad calls; the dashboard page lists them.
func TestSchedulesAPI(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	spec := `{"name":"nightly","workflow":"quick","input":21,"cron":"0 2 * * *","zone":"Europe/Paris","jitter":"1m","overlap":"buffer-one","catch_up":"all","catch_up_max":3}`
	var got scheduleResp
	if st := a.do("POST", "api/schedules", spec, &got); st != 200 {
		t.Fatalf("create: %d %+v", st, got)
	}
	s := got.Schedule
	if s.Name != "nightly" || s.Workflow != "quick" || string(s.Input) != "21" || s.Cron != "0 2 * * *" || s.Zone != "Europe/Paris" ||
		s.Jitter != "1m0s" || s.Overlap != "buffer-one" || s.CatchUp != "all" || s.CatchUpMax != 3 || s.Next == "" || s.Paused || s.RunID != "schedule:nightly" {
		t.Errorf("created schedule: %+v", s)
	}
	a.wantErr("POST", "api/schedules", spec, 409, "conflict")
	a.wantErr("POST", "api/schedules", `{"name":"bad","workflow":"quick","cron":"0 25 * * *"}`, 400, "bad_request")
	a.wantErr("POST", "api/schedules", `{"name":"bad","workflow":"quick","every":"soon"}`, 400, "bad_request")
	a.wantErr("POST", "api/schedules", `{"name":"bad","workflow":"quick","every":"1h","overlap":"sometimes"}`, 400, "bad_request")
	a.wantErr("POST", "api/schedules", `{"name":"bad","workflow":"quick","every":"1h","input":"twenty-one"}`, 400, "bad_request")
	a.wantErr("GET", "api/schedules/none", "", 404, "not_found")
	a.wantErr("POST", "api/schedules/none/pause", "", 404, "not_found")
	a.wantErr("POST", "api/schedules/nightly/explode", "", 404, "not_found")

	var trig scheduleResp
	if st := a.do("POST", "api/schedules/nightly/trigger", "", &trig); st != 200 || !strings.HasPrefix(trig.RunID, "nightly@trigger:") || trig.Schedule.Started != 1 {
		t.Fatalf("trigger: %d %+v", st, trig)
	}
	if r := a.waitRun(trig.RunID, status("completed")); r.Output != "42" {
		t.Errorf("the triggered run's output %q, want 42", r.Output)
	}
	got = scheduleResp{}
	if st := a.do("POST", "api/schedules/nightly/pause", "", &got); st != 200 || !got.Schedule.Paused || got.Schedule.Next != "" {
		t.Errorf("pause: %d %+v", st, got.Schedule)
	}
	got = scheduleResp{}
	if st := a.do("POST", "api/schedules/nightly/resume", "", &got); st != 200 || got.Schedule.Paused {
		t.Errorf("resume: %d %+v", st, got.Schedule)
	}
	got = scheduleResp{}
	if st := a.do("POST", "api/schedules/nightly/update", `{"workflow":"quick","input":1,"every":"1h30m"}`, &got); st != 200 || got.Schedule.Every != "1h30m0s" || got.Schedule.Cron != "" {
		t.Errorf("update: %d %+v", st, got.Schedule)
	}
	if st := a.do("POST", "api/schedules", `{"name":"hourly","workflow":"sleeper","input":0,"every":"1h"}`, nil); st != 200 {
		t.Errorf("create hourly: %d", st)
	}
	var list struct {
		Schedules []web.Schedule `json:"schedules"`
	}
	if st := a.do("GET", "api/schedules", "", &list); st != 200 || len(list.Schedules) != 2 || list.Schedules[0].Name != "hourly" || list.Schedules[1].Recent[0].RunID != trig.RunID {
		t.Errorf("list: %d %+v", st, list)
	}

	// The page lists both, with their buttons.
	resp, err := http.Get(a.srv.URL + "/durable/schedules")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`data-schedule="nightly"`, `data-schedule="hourly"`, `api/schedules/hourly/trigger`, `every 1h30m0s`, trig.RunID, `id="new-schedule"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the schedules page lacks %q", want)
		}
	}

	// A schedule survives a restart; a deleted one is gone.
	a.restart()
	if st := a.do("POST", "api/schedules/nightly/delete", "", nil); st != 200 {
		t.Errorf("delete: %d", st)
	}
	a.wantErr("GET", "api/schedules/nightly", "", 404, "not_found")
	got = scheduleResp{}
	if st := a.do("GET", "api/schedules/hourly", "", &got); st != 200 || got.Schedule.Every != "1h0m0s" {
		t.Errorf("hourly after a restart: %d %+v", st, got.Schedule)
	}
}

// A read-only dashboard refuses schedule changes and shows no buttons.
func TestSchedulesReadOnly(t *testing.T) {
	t.Parallel()
	a := newApp(t, &web.Options{ReadOnly: true})
	a.wantErr("POST", "api/schedules", `{"name":"x","workflow":"quick","every":"1h"}`, 403, "forbidden")
	resp, err := http.Get(a.srv.URL + "/durable/schedules")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(page), "new-schedule") {
		t.Errorf("read-only schedules page: %d, with the create form", resp.StatusCode)
	}
}
