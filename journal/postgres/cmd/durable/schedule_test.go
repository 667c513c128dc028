package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
)

// TestSchedule runs the schedule commands beside an engine with
// workflows, which runs the schedule: create, trigger (the firing runs
// there), pause, list, update, delete, and the errors of bad calls.
func TestSchedule(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	ctx := t.Context()
	s, err := postgres.Open(ctx, url, &postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e, err := durable.New(s, &durable.Config{Workflows: []durable.Definition{greet}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cmd := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := run(append([]string{"-postgres", url, "-schema", schema, "schedule"}, args...), &out, &errb)
		return out.String(), errb.String(), code
	}
	out, errs, code := cmd("create", "hi", "-workflow", "greet", "-input", `"bo"`, "-cron", "@hourly", "-zone", "Asia/Tokyo")
	if code != exitOK || !strings.Contains(out, `"name": "hi"`) || !strings.Contains(out, `"zone": "Asia/Tokyo"`) || !strings.Contains(out, `"next": "`) {
		t.Fatalf("create = %d\n%s%s", code, out, errs)
	}
	if _, errs, code = cmd("create", "hi", "-workflow", "greet", "-every", "1h"); code != exitFailure || !strings.Contains(errs, "schedule exists") {
		t.Errorf("second create = %d %s", code, errs)
	}
	if _, errs, code = cmd("create", "bad", "-workflow", "greet", "-cron", "0 0 31 2 *"); code != exitFailure || !strings.Contains(errs, "never fires") {
		t.Errorf("create with a cron that never fires = %d %s", code, errs)
	}
	if _, _, code = cmd("create", "bad", "-workflow", "greet", "-every", "soon"); code != exitUsage {
		t.Errorf("create -every soon = %d, want usage", code)
	}
	if _, errs, code = cmd("pause", "none"); code != exitFailure || !strings.Contains(errs, "not found") {
		t.Errorf("pause none = %d %s", code, errs)
	}
	out, errs, code = cmd("trigger", "hi")
	if code != exitOK || !strings.HasPrefix(out, "started run hi@trigger:") {
		t.Fatalf("trigger = %d\n%s%s", code, out, errs)
	}
	id := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "started run ")
	h, err := durable.Attach(ctx, e, greet, id)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := h.Result(ctx); err != nil || got != "hello, bo" {
		t.Errorf("the triggered run = %q, %v", got, err)
	}
	if out, errs, code = cmd("pause", "hi"); code != exitOK || !strings.Contains(out, `"paused": true`) {
		t.Errorf("pause = %d\n%s%s", code, out, errs)
	}
	if out, errs, code = cmd("update", "hi", "-workflow", "greet", "-input", `"cy"`, "-every", "2h"); code != exitOK || !strings.Contains(out, `"every": "2h0m0s"`) || !strings.Contains(out, `"input": "cy"`) {
		t.Errorf("update = %d\n%s%s", code, out, errs)
	}
	if out, errs, code = cmd("list"); code != exitOK || !strings.Contains(out, "hi") || !strings.Contains(out, "every 2h0m0s") || !strings.Contains(out, "paused") {
		t.Errorf("list = %d\n%s%s", code, out, errs)
	}
	if out, errs, code = cmd("delete", "hi"); code != exitOK || !strings.Contains(out, "deleted") {
		t.Errorf("delete = %d\n%s%s", code, out, errs)
	}
	if _, err := e.GetSchedule(context.Background(), "hi"); err == nil {
		t.Error("the schedule is still there after delete")
	}
}
