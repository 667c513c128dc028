package browsertest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/dashdemo"
	"github.com/durable-go/durable/web"
)

// browser returns a chromedp context on a fresh headless Chromium, or
// skips the test (see the package doc).
func browser(t *testing.T) context.Context {
	t.Helper()
	if os.Getenv("DURABLE_REQUIRE_BROWSER") != "1" {
		t.Skip("browser tests need Chromium: set DURABLE_REQUIRE_BROWSER=1 to run them (apt-get install chromium)")
	}
	exe := os.Getenv("DURABLE_CHROMIUM")
	if exe == "" {
		exe = "chromium"
	}
	path, err := exec.LookPath(exe)
	if err != nil {
		t.Fatalf("DURABLE_REQUIRE_BROWSER=1 but there is no browser %q: %v", exe, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser: no timeout on this one
		t.Fatalf("start %s: %v", path, err)
	}
	// Accept the confirm() of the Cancel button.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// demo starts the application of example/dashboard and serves its
// dashboard; it returns the engine and the dashboard's URL.
func demo(t *testing.T) (*durable.Engine, string) {
	t.Helper()
	e, err := dashdemo.Open(context.Background(), filepath.Join(t.TempDir(), "app.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, &web.Options{PollInterval: 100 * time.Millisecond})))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); e.Close() })
	return e, srv.URL + "/durable/"
}

// step runs browser actions with a bound, so a page that never gets
// where the test expects fails the test instead of hanging it.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		failed(t, ctx, what, err)
	}
}

// failed ends the test after a step failed, with what the page showed.
func failed(t *testing.T, ctx context.Context, what string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
		path := filepath.Join(t.ArtifactDir(), "failure.png")
		if os.WriteFile(path, png, 0o644) == nil {
			t.Logf("the page when the step failed: %s", path)
		}
	}
	if body, berr := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body"))); berr == nil {
		t.Logf("the page's text:\n%s", body)
	}
	t.Fatalf("%s: %v", what, err)
}

// screenshot saves the whole page as name in the test's artifact
// directory and logs the path.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// get runs one action that returns a value, with a bound.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		failed(t, ctx, what, err)
	}
	return v
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// TestDashboard opens the runs list, filters it to parked runs, opens the
// parked run, checks its diff and resumes it; sends a message from the
// form to the waiting approval; cancels a sleeping reminder. Each change
// must show on the page by itself (the event stream), with no reload.
func TestDashboard(t *testing.T) {
	ctx := browser(t)
	e, url := demo(t)

	step(t, ctx, "open the runs list", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`table.runs tbody tr`)),
		chromedp.WaitVisible(chromedp.CSS(`#live-state.on`)))
	list := text(t, ctx, `table.runs`)
	for _, id := range []string{"signup-ada", "approval-q3-budget", "reminder-bob", "checkout-77", "sync-crm-acme", "fanout-42/2"} {
		if !strings.Contains(list, id) {
			t.Errorf("the runs list lacks %s:\n%s", id, list)
		}
	}
	screenshot(t, ctx, "runs-list.png")

	step(t, ctx, "filter to parked runs",
		chromedp.SetValue(chromedp.CSS(`select[name=status]`), "parked"),
		chromedp.Click(chromedp.CSS(`form.filters button`)),
		chromedp.WaitVisible(chromedp.CSS(`a.count.c-parked.on`)))
	rows := get(t, ctx, "count rows", chromedp.Evaluate[int](`document.querySelectorAll("table.runs tbody tr").length`))
	if list := text(t, ctx, `table.runs tbody`); rows != 1 || !strings.Contains(list, "signup-ada") {
		t.Fatalf("filtered to parked: %d rows:\n%s", rows, list)
	}

	step(t, ctx, "open the parked run", chromedp.Click(chromedp.CSS(`a[href="./runs/signup-ada"]`)),
		chromedp.WaitVisible(chromedp.CSS(`section.diff`)), chromedp.WaitVisible(chromedp.CSS(`#live-state.on`)))
	diff := text(t, ctx, `section.diff`)
	for _, want := range []string{`step "create-account"`, `step "create_account"`, "dashdemo.go:"} {
		if !strings.Contains(diff, want) {
			t.Errorf("the diff lacks %s:\n%s", want, diff)
		}
	}
	screenshot(t, ctx, "run-parked.png")
	step(t, ctx, "resume it and see it complete", chromedp.Click(chromedp.CSS(`#resume`)),
		chromedp.WaitVisible(chromedp.CSS(`#live-run .head .badge.s-completed`)))
	if tl := text(t, ctx, `ol.timeline`); !strings.Contains(tl, "send-welcome") {
		t.Errorf("the timeline of the resumed run lacks its last step:\n%s", tl)
	}
	screenshot(t, ctx, "run-resumed.png")

	step(t, ctx, "open the waiting approval", chromedp.Navigate(url+"runs/approval-q3-budget"),
		chromedp.WaitVisible(chromedp.CSS(`form#send`)), chromedp.WaitVisible(chromedp.CSS(`#live-state.on`)))
	channel := get(t, ctx, "read the channel", chromedp.Value(chromedp.CSS(`form#send input[name=channel]`)))
	if channel != "decision" {
		t.Errorf("the send form's channel is %q, want the one the run receives on", channel)
	}
	screenshot(t, ctx, "run-waiting.png")
	step(t, ctx, "send a message from the form and see the run finish",
		chromedp.SendKeys(chromedp.CSS(`form#send textarea`), `{"approved": true, "by": "the browser test"}`),
		chromedp.Click(chromedp.CSS(`form#send button`)),
		chromedp.WaitVisible(chromedp.CSS(`#live-run .head .badge.s-completed`)))
	h, err := durable.Attach(context.Background(), e, dashdemoApproval(), "approval-q3-budget")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := h.Result(context.Background()); err != nil || got != "Q3 budget approved by the browser test" {
		t.Errorf("the approval's result = %q, %v", got, err)
	}

	step(t, ctx, "open the queues", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#live-state.on`)),
		chromedp.Click(chromedp.CSS(`header nav a[href="./queues"]`)), chromedp.WaitVisible(chromedp.CSS(`table.queues tbody tr`)))
	if q := text(t, ctx, `table.queues tbody`); !strings.Contains(q, "reports") {
		t.Errorf("the queues page lacks the queue reports:\n%s", q)
	}
	waitingRows := get(t, ctx, "read the waiting runs", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("section.card table.runs tbody tr")).map(r => r.innerText.replace(/\s+/g, " ").trim())`))
	if len(waitingRows) != 2 || !strings.HasPrefix(waitingRows[0], "1 report-2026-q4") || !strings.HasPrefix(waitingRows[1], "2 report-2026-q3") {
		t.Errorf("the waiting runs of reports: %q, want report-2026-q4 at 1 and report-2026-q3 at 2", waitingRows)
	}
	screenshot(t, ctx, "queues.png")
	step(t, ctx, "open a waiting run", chromedp.Click(chromedp.CSS(`a[href="./runs/report-2026-q3"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#live-run .head`)))
	if head := text(t, ctx, `#live-run .head`); !strings.Contains(head, "waiting at position 2") {
		t.Errorf("the waiting run's page does not show its position:\n%s", head)
	}

	step(t, ctx, "open the sleeping reminder", chromedp.Navigate(url+"runs/reminder-bob"),
		chromedp.WaitVisible(chromedp.CSS(`#cancel`)), chromedp.WaitVisible(chromedp.CSS(`#live-state.on`)))
	if now := text(t, ctx, `section.now`); !strings.Contains(now, "sleeping until") {
		t.Errorf("the reminder does not say it sleeps:\n%s", now)
	}
	step(t, ctx, "cancel it", chromedp.Click(chromedp.CSS(`#cancel`)),
		chromedp.WaitVisible(chromedp.CSS(`#live-run .head .badge.s-canceled`)))
	if info, err := e.Get(context.Background(), "reminder-bob"); err != nil || info.Status != durable.StatusCanceled {
		t.Errorf("reminder-bob: %v %v, want canceled", info.Status, err)
	}
	fmt.Fprintln(os.Stderr) // keep the browser's own output apart
}

// dashdemoApproval is the approval workflow of the demo, found by name.
func dashdemoApproval() *durable.Workflow[string, string] {
	for _, d := range dashdemo.Workflows {
		if w, ok := d.(*durable.Workflow[string, string]); ok && w.Name() == "approval" {
			return w
		}
	}
	panic("dashdemo has no approval workflow")
}
