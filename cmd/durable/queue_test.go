package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/web"
)

var queueWaiter = durable.Define("mailer", func(ctx durable.Context, _ int) (string, error) {
	return durable.Receive[string](ctx, "go")
})

// queueApp opens a journal with a queue "mail" of one slot held by run
// "busy", and runs "low" and "high" waiting in it.
func queueApp(t *testing.T) (*durable.Engine, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	e, err := durable.Open(path, &durable.Config{
		Workflows: []durable.Definition{queueWaiter},
		Queues:    map[string]durable.Queue{"mail": {Concurrency: 1, Rate: 3}},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := durable.Start(ctx, e, queueWaiter, "busy", 0, durable.OnQueue("mail")); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, e, "busy", func(i durable.RunInfo) bool { return !i.Queued }); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		id string
		p  int
	}{{"low", 0}, {"high", 4}} {
		if _, err := durable.Start(ctx, e, queueWaiter, r.id, 0, durable.OnQueue("mail"), durable.WithPriority(r.p)); err != nil {
			t.Fatal(err)
		}
	}
	return e, path
}

func TestQueuesFile(t *testing.T) {
	t.Parallel()
	e, path := queueApp(t)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	out, _, code := durableCmd(t, "queues", path)
	wantCode(t, code, exitOK)
	wantContains(t, "queues FILE", out, "QUEUE", "RUNNING", "WAITING", "waiting in mail (2):", "POS")
	lines := strings.Split(out, "\n")
	if f := strings.Fields(lines[1]); len(f) != 6 || f[0] != "mail" || f[1] != "?" || f[4] != "1" || f[5] != "2" {
		t.Errorf("queues FILE: the row of mail is %q, want mail ? ? ? 1 2", f)
	}
	var order []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 6 && (f[1] == "high" || f[1] == "low") {
			order = append(order, f[0]+" "+f[1])
		}
	}
	if strings.Join(order, ", ") != "1 high, 2 low" {
		t.Errorf("queues FILE lists the waiting runs as %q, want high at 1, then low at 2:\n%s", order, out)
	}
	out, _, code = durableCmd(t, "-json", "queues", path, "-n", "1")
	wantCode(t, code, exitOK)
	var body struct{ Queues []web.Queue }
	if err := json.Unmarshal([]byte(out), &body); err != nil || len(body.Queues) != 1 || len(body.Queues[0].Next) != 1 || body.Queues[0].Next[0].ID != "high" {
		t.Errorf("queues -json -n 1: %v\n%s", err, out)
	}
	out, _, code = durableCmd(t, "show", path, "low")
	wantCode(t, code, exitOK)
	wantContains(t, "show of a waiting run", out, "mail (waiting at position 2, priority 0)")
	_, errOut, code := durableCmd(t, "queues", path, "-n", "-1")
	wantCode(t, code, exitUsage)
	wantContains(t, "queues -n -1", errOut, "-n -1")
}

func TestQueuesRemote(t *testing.T) {
	t.Parallel()
	e, _ := queueApp(t)
	mux := http.NewServeMux()
	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, nil)))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); e.Close() })
	out, _, code := durableCmd(t, "-addr", srv.URL+"/durable", "queues")
	wantCode(t, code, exitOK)
	lines := strings.Split(out, "\n")
	if f := strings.Fields(lines[1]); len(f) != 6 || f[0] != "mail" || f[1] != "1" || f[2] != "-" || f[3] != "3/s" || f[4] != "1" || f[5] != "2" {
		t.Errorf("queues -addr: the row of mail is %q, want mail 1 - 3/s 1 2:\n%s", f, out)
	}
	wantContains(t, "queues -addr", out, "waiting in mail (2):", "high", "low")
}
