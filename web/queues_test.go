package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/web"
)

// newQueueApp is an app whose engine has a queue "mail" of one slot, held
// by run "busy"; "low" and "high" wait in it.
func newQueueApp(t *testing.T) *app {
	t.Helper()
	a := &app{t: t, path: filepath.Join(t.TempDir(), "app.db")}
	a.cfg = &durable.Config{
		Workflows: []durable.Definition{waiter},
		Queues:    map[string]durable.Queue{"mail": {Concurrency: 1, Rate: 5, Burst: 2}, "idle": {}},
	}
	a.cfg.Logger = slog.New(slog.DiscardHandler)
	e, err := durable.Open(a.path, a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.e = e
	mux := http.NewServeMux()
	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, nil)))
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.close)
	ctx := context.Background()
	if _, err := durable.Start(ctx, e, waiter, "busy", 0, durable.OnQueue("mail")); err != nil {
		t.Fatal(err)
	}
	a.waitRun("busy", waiting("receive"))
	for _, s := range []struct {
		id string
		p  int
	}{{"low", 0}, {"high", 7}} {
		if _, err := durable.Start(ctx, e, waiter, s.id, 0, durable.OnQueue("mail"), durable.WithPriority(s.p), durable.WithDedupKey("k-"+s.id)); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func TestQueuesAPI(t *testing.T) {
	a := newQueueApp(t)
	var body struct{ Queues []web.Queue }
	if code := a.do("GET", "api/queues", "", &body); code != 200 || len(body.Queues) != 2 {
		t.Fatalf("GET api/queues: %d %+v", code, body)
	}
	idle, mail := body.Queues[0], body.Queues[1]
	if idle.Name != "idle" || idle.Running != 0 || idle.Waiting != 0 || len(idle.Next) != 0 {
		t.Errorf("queue idle: %+v", idle)
	}
	if mail.Name != "mail" || mail.Concurrency != 1 || mail.Rate != 5 || mail.Burst != 2 || mail.Running != 1 || mail.Local != 1 || mail.Waiting != 2 ||
		len(mail.Next) != 2 || mail.Next[0].ID != "high" || mail.Next[0].Position != 1 || mail.Next[0].Priority != 7 || mail.Next[1].ID != "low" || mail.Next[1].Position != 2 {
		t.Errorf("queue mail: %+v", mail)
	}
	if code := a.do("GET", "api/queues?next=1", "", &body); code != 200 || len(body.Queues[1].Next) != 1 || body.Queues[1].Waiting != 2 {
		t.Errorf("GET api/queues?next=1: %d %+v", code, body)
	}
	a.wantErr("GET", "api/queues?next=-1", "", 400, "bad_request")
	a.wantErr("POST", "api/queues", "", 405, "method_not_allowed")

	r := a.waitRun("low", func(r web.Run) bool { return true })
	if r.Queue != "mail" || r.QueuePosition != 2 || r.DedupKey != "k-low" || !strings.Contains(r.WaitingFor, "queue") {
		t.Errorf("GET api/runs/low: queue %q position %d key %q waiting for %q", r.Queue, r.QueuePosition, r.DedupKey, r.WaitingFor)
	}
	// Once busy finishes, high is admitted and low moves up.
	if err := durable.Send(context.Background(), a.e, "busy", "order", map[string]any{"item": "x", "qty": 1}); err != nil {
		t.Fatal(err)
	}
	a.waitQueued("high", func(r web.Run) bool { return r.QueuePosition == 0 && len(r.Pending) > 0 })
	a.waitQueued("low", func(r web.Run) bool { return r.QueuePosition == 1 })
}

// waitQueued is waitRun with a fresh body each time: QueuePosition is
// omitted from the JSON once a run is admitted.
func (a *app) waitQueued(id string, ok func(web.Run) bool) {
	a.t.Helper()
	for range 5000 {
		var d struct{ Run web.Run }
		if a.do("GET", "api/runs/"+id, "", &d) == 200 && ok(d.Run) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	a.t.Fatalf("run %q never got there", id)
}

func TestQueuesPage(t *testing.T) {
	a := newQueueApp(t)
	code, body := a.page("queues")
	if code != 200 {
		t.Fatalf("queues page: %d\n%s", code, body)
	}
	for _, want := range []string{">mail<", ">idle<", "5/s (burst 2)", "Waiting in mail", `href="./runs/high"`, `href="./runs/low"`, `href="./queues"`} {
		if !strings.Contains(body, want) {
			t.Errorf("queues page lacks %s:\n%s", want, body)
		}
	}
	if i, j := strings.Index(body, "runs/high"), strings.Index(body, "runs/low"); i < 0 || j < i {
		t.Errorf("queues page lists low before high (positions 2 and 1)")
	}
	_, body = a.page("runs/low")
	if !strings.Contains(body, "waiting at position 2") || !strings.Contains(body, "k-low") {
		t.Errorf("run page of a waiting run lacks its queue position and key:\n%s", body)
	}
	if code, _ := a.page("queues?next=x"); code != 400 {
		t.Errorf("queues?next=x: %d, want 400", code)
	}
}
