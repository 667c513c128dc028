package durable_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
)

// TestLoggerSilentOnReplay counts the lines a workflow logs across a
// restart: each once, with the run's id, workflow and position, although
// the code before the sleep runs twice.
func TestLoggerSilentOnReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		var mu sync.Mutex
		log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
		calls := 0
		wf := durable.Define("logs", func(ctx durable.Context, _ string) (string, error) {
			calls++
			lg := durable.Logger(ctx)
			lg.Info("begin")
			if _, err := durable.Step(ctx, "a", func(context.Context) (int, error) { return 1, nil }); err != nil {
				return "", err
			}
			lg.Info("after a", "n", 1)
			if err := durable.Sleep(ctx, time.Hour); err != nil {
				return "", err
			}
			lg.With("k", "v").Warn("woke")
			if _, err := durable.Step(ctx, "b", func(context.Context) (int, error) { return 2, nil }); err != nil {
				return "", err
			}
			durable.Logger(ctx).Info("end")
			return "ok", nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, Logger: log})
		if _, err := durable.Start(t.Context(), env.Engine, wf, "l", ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		env.Restart()
		if out, err := durable.Run(t.Context(), env.Engine, wf, "l", ""); err != nil || out != "ok" {
			t.Fatalf("Run = %q, %v", out, err)
		}
		if calls != 2 {
			t.Fatalf("the workflow function ran %d times, want 2 (a restart in between)", calls)
		}
		mu.Lock()
		defer mu.Unlock()
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if !strings.Contains(l, "msg=durable:") { // the engine's own lines
				lines = append(lines, l)
			}
		}
		want := []string{
			`level=INFO msg=begin run_id=l workflow=logs position=0`,
			`level=INFO msg="after a" run_id=l workflow=logs n=1 position=1`,
			`level=WARN msg=woke run_id=l workflow=logs k=v position=2`,
			`level=INFO msg=end run_id=l workflow=logs position=3`,
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Fatalf("logged:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	})
}
