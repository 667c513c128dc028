package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/dashdemo"
	"github.com/durable-go/durable/web"
)

// live starts the application of example/dashboard, serves its web
// handler, and returns the engine, the -addr URL and the journal's path.
func live(t *testing.T) (*durable.Engine, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	e, err := dashdemo.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, &web.Options{PollInterval: 10 * time.Millisecond})))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); e.Close() })
	return e, srv.URL + "/durable", path
}

// settle waits until run id has status st. The engine works in the
// background; the CLI has no way to wait, so the test polls.
func settle(t *testing.T, e *durable.Engine, id string, st durable.Status) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		if info, err := e.Get(context.Background(), id); err == nil && info.Status == st {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("run %q never became %v", id, st)
}

func TestRemote(t *testing.T) {
	e, addr, _ := live(t)
	ctx := context.Background()

	out, _, code := durableCmd(t, "-addr", addr, "list")
	wantCode(t, code, exitOK)
	wantContains(t, "list", out, "ID", "NOW / ERROR", "signup-ada", "parked", `waiting for a message on "decision"`, `retrying step "call-crm-api"`, "fanout-42/2")

	out, _, code = durableCmd(t, "-addr", addr, "list", "-status", "parked")
	wantCode(t, code, exitOK)
	if n := strings.Count(out, "\n"); n != 2 || !strings.Contains(out, "signup-ada") {
		t.Errorf("list -status parked:\n%s", out)
	}

	// A cursor through every run, two at a time, in JSON.
	var ids []string
	for after := ""; ; {
		out, _, code = durableCmd(t, "-addr", addr, "-json", "list", "-limit", "2", "-after", after)
		wantCode(t, code, exitOK)
		var page struct {
			Runs []web.Run
			Next string
		}
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("list -json: %v\n%s", err, out)
		}
		for _, r := range page.Runs {
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(ids) != 17 {
		t.Errorf("paging through the runs gave %d: %v", len(ids), ids)
	}
	_, errOut, _ := durableCmd(t, "-addr", addr, "list", "-limit", "3")
	wantContains(t, "list -limit 3", errOut, "the next page: -after checkout-77/1")

	out, _, code = durableCmd(t, "-addr", addr, "show", "signup-ada")
	wantCode(t, code, exitOK)
	wantContains(t, "show of a parked run", out, "diverged", `step "create-account"`, `step "create_account"`, "dashdemo.go:", "timeline (")
	out, _, code = durableCmd(t, "-addr", addr, "show", "-json", "approval-q3-budget")
	wantCode(t, code, exitOK)
	var d runDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Run.Pending) != 1 || d.Run.Pending[0].Name != "decision" {
		t.Errorf("show -json: %v %+v", err, d.Run)
	}
	_, errOut, code = durableCmd(t, "-addr", addr, "show", "nope")
	wantCode(t, code, exitFailure)
	wantContains(t, "show of an unknown run", errOut, "not_found")

	// Resume, send, cancel: they act at once.
	out, _, code = durableCmd(t, "-addr", addr, "resume", "signup-ada")
	wantCode(t, code, exitOK)
	wantContains(t, "resume", out, `run "signup-ada"`)
	settle(t, e, "signup-ada", durable.StatusCompleted)

	_, _, code = durableCmd(t, "-addr", addr, "send", "approval-q3-budget", "decision", `{"approved": tru`)
	wantCode(t, code, exitUsage)
	_, errOut, code = durableCmd(t, "-addr", addr, "send", "nope", "decision", `{}`)
	wantCode(t, code, exitFailure)
	wantContains(t, "send to an unknown run", errOut, "not_found")
	out, _, code = durableCmd(t, "-addr", addr, "send", "approval-q3-budget", "decision", `{"approved": true, "by": "the cli"}`)
	wantCode(t, code, exitOK)
	wantContains(t, "send", out, "message stored")
	settle(t, e, "approval-q3-budget", durable.StatusCompleted)

	out, _, code = durableCmd(t, "-addr", addr, "-json", "cancel", "reminder-bob")
	wantCode(t, code, exitOK)
	var ch struct{ Run web.Run }
	if err := json.Unmarshal([]byte(out), &ch); err != nil || !ch.Run.CancelRequested {
		t.Errorf("cancel -json: %v %+v", err, ch.Run)
	}
	settle(t, e, "reminder-bob", durable.StatusCanceled)
	_, errOut, code = durableCmd(t, "-addr", addr, "cancel", "order-1001")
	wantCode(t, code, exitFailure)
	wantContains(t, "cancel of a completed run", errOut, "conflict")

	// watch prints the changes a send makes.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	w := &watchWriter{want: "fanout-42  fanout  completed", seen: make(chan struct{})}
	ready := &watchWriter{want: "durable: watching", seen: make(chan struct{})}
	done := make(chan int)
	go func() {
		c := &cli{ctx: wctx, stdout: w, stderr: ready, self: selfCommand}
		done <- c.main([]string{"-addr", addr, "watch"})
	}()
	select {
	case <-ready.seen:
	case code := <-done:
		t.Fatalf("watch ended with %d: %s", code, ready.String())
	}
	if err := durable.Send(ctx, e, "fanout-42/2", "picked-up", true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.seen:
	case <-time.After(time.Minute):
		t.Fatalf("watch never printed the parent's completion:\n%s%s", w.String(), ready.String())
	}
	stop()
	if code := <-done; code != exitOK {
		t.Errorf("watch ended with %d: %s", code, ready.String())
	}
	t.Logf("watch printed:\n%s", w.String())
}

// watchWriter collects watch's output and closes seen once it holds want.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestFileJSON checks -json and the cursor in FILE mode, on the journal
// of a stopped application.
func TestFileJSON(t *testing.T) {
	e, _, path := live(t)
	e.Close()
	out, _, code := durableCmd(t, "list", "-json", path, "-limit", "4")
	wantCode(t, code, exitOK)
	var page struct {
		Runs []web.Run
		Next string
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Runs) != 4 || page.Next != page.Runs[3].ID {
		t.Fatalf("list -json: %v %+v", err, page)
	}
	out, _, _ = durableCmd(t, "list", path, "-after", page.Next, "-limit", "1")
	if !strings.Contains(out, "fanout-42") || strings.Contains(out, "export-2026-11") {
		t.Errorf("list -after %s:\n%s", page.Next, out)
	}
	out, _, code = durableCmd(t, "-json", "show", path, "checkout-77")
	wantCode(t, code, exitOK)
	var d runDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Run.Status != "failed" || len(d.Run.Trace) != 3 || len(d.Children) != 1 {
		t.Errorf("show -json: %v %+v", err, d)
	}
	out, _, code = durableCmd(t, "cancel", "-json", path, "reminder-bob")
	wantCode(t, code, exitOK)
	var ch struct{ Run web.Run }
	if err := json.Unmarshal([]byte(out), &ch); err != nil || !ch.Run.CancelRequested {
		t.Errorf("cancel -json in FILE mode: %v\n%s", err, out)
	}
}
