package enginetest

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/durable-go/durable"
)

func init() {
	register("GetListRunInfo", testGetListRunInfo)
	register("RetentionResult", testRetentionResult)
}

// Get and List describe runs as the journal has them: id, workflow,
// status, parent, times, error, input and output, what a run waits for.
func testGetListRunInfo(h *harness) {
	ctx := Ctx(h.T)
	child := durable.Define("info-child", func(ctx durable.Context, in int) (int, error) { return in + 1, nil })
	wf := durable.Define("info", func(ctx durable.Context, in string) (string, error) {
		if in == "fail" {
			return "", errors.New("told to fail")
		}
		if _, err := durable.RunChild(ctx, child, ctx.RunID()+"-kid", 1); err != nil {
			return "", err
		}
		if in == "wait" {
			if _, err := durable.Receive[int](ctx, "go"); err != nil {
				return "", err
			}
		}
		return "out-" + in, nil
	})
	e := h.open(wf, child)
	if _, err := durable.Run(ctx, e, wf, "i-done", "x"); err != nil {
		h.Fatal(err)
	}
	if _, err := durable.Run(ctx, e, wf, "i-fail", "fail"); err == nil {
		h.Fatal("Run(fail) = nil error")
	}
	if _, err := durable.Start(ctx, e, wf, "i-wait", "wait"); err != nil {
		h.Fatal(err)
	}
	w := WaitInfo(h.T, e, "i-wait", func(i durable.RunInfo) bool { return i.Waiting == "a message" })
	if w.Status != durable.StatusRunning || w.Workflow != "info" || w.Err != nil || w.Output != "" || !strings.Contains(w.Input, "wait") {
		h.Errorf("waiting run: %+v", w)
	}
	if len(w.Pending) == 0 {
		h.Errorf("waiting run: no Pending operation, want its receive")
	}

	d := MustGet(h.T, e, "i-done")
	if d.ID != "i-done" || d.Workflow != "info" || d.Status != durable.StatusCompleted || d.Err != nil || d.Parent != "" {
		h.Errorf("completed run: %+v", d)
	}
	if !strings.Contains(d.Output, "out-x") || !strings.Contains(d.Input, "x") {
		h.Errorf("completed run: Input %q, Output %q; want x and out-x", d.Input, d.Output)
	}
	if d.CreatedAt.IsZero() || d.UpdatedAt.Before(d.CreatedAt) {
		h.Errorf("completed run: created %v, updated %v", d.CreatedAt, d.UpdatedAt)
	}
	f := MustGet(h.T, e, "i-fail")
	if f.Status != durable.StatusFailed || f.Err == nil || !strings.Contains(f.Err.Error(), "told to fail") {
		h.Errorf("failed run: %v, %v; want failed, told to fail", f.Status, f.Err)
	}
	k := MustGet(h.T, e, "i-done-kid")
	if k.Parent != "i-done" || k.Workflow != "info-child" || k.Status != durable.StatusCompleted {
		h.Errorf("child run: %+v", k)
	}
	if _, err := e.Get(ctx, "nobody"); !isNotFound(err) {
		h.Errorf("Get of no run = %v, want ErrNotFound", err)
	}

	ids := func(o durable.ListOptions) []string {
		h.Helper()
		var got []string
		for {
			page, err := e.List(ctx, o)
			if err != nil {
				h.Fatal(err)
			}
			for _, r := range page.Runs {
				got = append(got, r.ID)
			}
			if page.NextAfter == "" {
				return got
			}
			o.After = page.NextAfter
		}
	}
	for _, tc := range []struct {
		o    durable.ListOptions
		want []string
	}{
		{durable.ListOptions{}, []string{"i-done", "i-done-kid", "i-fail", "i-wait", "i-wait-kid"}},
		{durable.ListOptions{Limit: 2}, []string{"i-done", "i-done-kid", "i-fail", "i-wait", "i-wait-kid"}},
		{durable.ListOptions{Status: durable.StatusCompleted, Workflow: "info"}, []string{"i-done"}},
		{durable.ListOptions{Status: durable.StatusRunning}, []string{"i-wait"}},
		{durable.ListOptions{Status: durable.StatusFailed}, []string{"i-fail"}},
		{durable.ListOptions{Workflow: "info-child"}, []string{"i-done-kid", "i-wait-kid"}},
		{durable.ListOptions{Parent: "i-wait"}, []string{"i-wait-kid"}},
	} {
		if got := ids(tc.o); !slices.Equal(got, tc.want) {
			h.Errorf("List(%+v) = %v, want %v", tc.o, got, tc.want)
		}
	}
	// The same after a restart.
	e = h.restart(e, wf, child)
	if d2 := MustGet(h.T, e, "i-done"); d2.Status != d.Status || !d2.CreatedAt.Equal(d.CreatedAt) || d2.Output != d.Output {
		h.Errorf("after a restart: %+v, want %+v", d2, d)
	}
}

// A finished run's result stays readable (Result, Attach, Get) until
// retention deletes it; the handle of a run that finished here keeps its
// result even then.
func testRetentionResult(h *harness) {
	ctx := Ctx(h.T)
	wf := durable.Define("kept", func(ctx durable.Context, in int) (int, error) { return in * 2, nil })
	cfg := h.config(wf)
	cfg.Retention = -1 // kept until Purge below
	e := h.openWith(cfg)
	hd, err := durable.Start(ctx, e, wf, "k", 21)
	if err != nil {
		h.Fatal(err)
	}
	if got, err := hd.Result(ctx); err != nil || got != 42 {
		h.Fatalf("Result = %d, %v; want 42", got, err)
	}
	if got, err := hd.Result(ctx); err != nil || got != 42 {
		h.Fatalf("Result again = %d, %v; want 42", got, err)
	}
	again, err := durable.Attach(ctx, e, wf, "k")
	if err != nil {
		h.Fatal(err)
	}
	if got, err := again.Result(ctx); err != nil || got != 42 {
		h.Fatalf("Attach(finished).Result = %d, %v; want 42", got, err)
	}
	// Start of a finished id returns it, executing nothing.
	if got, err := durable.Run(ctx, e, wf, "k", 1); err != nil || got != 42 {
		h.Fatalf("Run of a finished id = %d, %v; want its result 42", got, err)
	}
	n, err := e.Purge(ctx, time.Now().Add(time.Hour))
	if err != nil || n < 1 {
		h.Fatalf("Purge = %d, %v; want the finished run deleted", n, err)
	}
	if _, err := e.Get(ctx, "k"); !isNotFound(err) {
		h.Fatalf("Get after Purge = %v, want ErrNotFound", err)
	}
	if got, err := hd.Result(ctx); err != nil || got != 42 {
		h.Fatalf("Result after Purge = %d, %v; want the kept 42", got, err)
	}

	// Config.Retention deletes finished runs by itself: an engine opened
	// once they are older than it deletes them at Open.
	if got, err := durable.Run(ctx, e, wf, "k2", 1); err != nil || got != 2 {
		h.Fatalf("Run(k2) = %d, %v; want 2", got, err)
	}
	const keep = 100 * time.Millisecond
	done := MustGet(h.T, e, "k2").UpdatedAt
	time.Sleep(keep - time.Since(done) + 10*time.Millisecond) // k2 is older than keep
	MustClose(h.T, e)
	cfg = h.config(wf)
	cfg.Retention = keep
	e = h.openWith(cfg)
	WaitFor(h.T, "retention to delete run k2", func() bool {
		_, err := e.Get(ctx, "k2")
		return isNotFound(err)
	})
}
