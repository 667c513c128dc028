package web_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/web"
)

// page fetches a dashboard page and returns its status and body.
func (a *app) page(path string) (int, string) {
	a.t.Helper()
	resp, err := http.Get(a.srv.URL + "/durable/" + path)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/") {
		a.t.Errorf("%s: Content-Type %q", path, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, string(b)
}

var evil = durable.Define("evil", func(ctx durable.Context, s string) (string, error) {
	if _, err := durable.Step(ctx, "<b>step</b>", func(context.Context) (string, error) { return s, nil }); err != nil {
		return "", err
	}
	return durable.Receive[string](ctx, "<i>ch</i>")
})

func TestDashboardPages(t *testing.T) {
	a := newApp(t, nil)
	h := start(a, parent, "p", 2)
	h.Result(context.Background())
	start(a, waiter, "w", 0)
	a.waitRun("w", waiting("receive"))
	a.parkOne("d")
	// After parkOne's restart, w (waiting for a message) is not loaded: a
	// message on another channel loads it, so the page knows its channel.
	if err := durable.Send(context.Background(), a.e, "w", "nudge", 0); err != nil {
		t.Fatal(err)
	}
	a.waitRun("w", waiting("receive"))

	code, body := a.page("")
	if code != 200 || !strings.Contains(body, `href="./runs/p%2f0"`) && !strings.Contains(body, `href="./runs/p%2F0"`) {
		t.Errorf("runs page: %d, no link to the child p/0:\n%s", code, body)
	}
	for _, want := range []string{`badge s-parked`, `waiting for a message on &#34;order&#34;`, `src="./static/app.js"`} {
		if !strings.Contains(body, want) {
			t.Errorf("runs page lacks %s", want)
		}
	}
	if _, body := a.page("?status=parked"); strings.Contains(body, `runs/w"`) || !strings.Contains(body, `runs/d"`) {
		t.Errorf("status filter: the list shows the wrong runs")
	}
	if code, body := a.page("?status=nope"); code != 400 || !strings.Contains(body, "status &#34;nope&#34;") {
		t.Errorf("bad filter: %d", code)
	}
	if _, body := a.page("?limit=1"); !strings.Contains(body, `?after=d&amp;limit=1`) {
		t.Errorf("paging: no next link:\n%s", body)
	}

	code, body = a.page("runs/d")
	for _, want := range []string{`Replay diverged at position 0`, `step &#34;a&#34;`, `step &#34;b&#34;`, `web_test.go:`, `id="resume"`, `id="cancel"`, `id="send"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("parked run page lacks %s", want)
		}
	}
	code, body = a.page("runs/" + url.PathEscape("p/0"))
	if code != 200 || !strings.Contains(body, `href="../runs/p"`) || strings.Contains(body, `id="cancel"`) {
		t.Errorf("child page: %d\n%s", code, body)
	}
	if code, _ := a.page("runs/nope"); code != 404 {
		t.Errorf("unknown run page: %d", code)
	}
	if code, _ := a.page("nowhere"); code != 404 {
		t.Errorf("unknown page: %d", code)
	}
	for _, f := range []string{"static/app.css", "static/app.js"} {
		if code, body := a.page(f); code != 200 || len(body) < 100 {
			t.Errorf("%s: %d", f, code)
		}
	}
}

// TestDashboardEscapes starts a run whose names and payloads hold HTML
// and checks that the pages show it as text, cut.
func TestDashboardEscapes(t *testing.T) {
	a := newApp(t, nil)
	a.e.Close()
	a.cfg.Workflows = append(a.cfg.Workflows, evil)
	a.cfg.MaxPayloadBytes = 0
	a.restart()
	id := `<script>alert(1)</script>`
	start(a, evil, id, "<img src=x onerror=alert(2)>"+strings.Repeat("x", 5000))
	a.waitRun(id, waiting("receive"))
	for _, path := range []string{"", "runs/" + url.PathEscape(id)} {
		code, body := a.page(path)
		if code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", "<b>step</b>", "<i>ch</i>", strings.Repeat("x", 300)} {
			if strings.Contains(body, bad) {
				t.Errorf("%q: the page holds %q unescaped or uncut", path, bad)
			}
		}
	}
	if _, body := a.page("runs/" + url.PathEscape(id)); !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(body, "&lt;b&gt;step&lt;/b&gt;") {
		t.Error("the run page does not show the names as text")
	}
}

func TestDashboardReadOnly(t *testing.T) {
	a := newApp(t, &web.Options{ReadOnly: true})
	a.parkOne("d")
	_, body := a.page("runs/d")
	for _, bad := range []string{`id="resume"`, `id="cancel"`, `id="send"`} {
		if strings.Contains(body, bad) {
			t.Errorf("read-only run page has %s", bad)
		}
	}
	if !strings.Contains(body, "read-only") {
		t.Error("the page does not say it is read-only")
	}
}
