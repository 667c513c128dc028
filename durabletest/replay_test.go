package durabletest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

// recorder is a testing.TB that keeps the errors reported to it, so a
// test can check what Replay reports. Logs go to the real test.
type recorder struct {
	testing.TB
	mu    sync.Mutex
	errs  []string
	fatal bool
}

func (r *recorder) Error(args ...any) { r.add(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) {
	r.add(fmt.Sprintf(format, args...))
}
func (r *recorder) Fatal(args ...any) { r.Error(args...); r.fatal = true }
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.fatal = true
}
func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, s)
}

// replayExecuted counts the steps of shop(-1) that executed.
var replayExecuted atomic.Int32

// shop is a workflow in three versions: v0 as the journal was written,
// v1 with a step inserted before "pay" (breaks runs that passed it), v2
// with the same step behind a Version branch (safe).
func shop(gen int) *durable.Workflow[int, string] {
	return durable.Define("shop", func(ctx durable.Context, n int) (string, error) {
		step := func(name string) (string, error) {
			return durable.Step(ctx, name, func(context.Context) (string, error) {
				if gen == -1 {
					replayExecuted.Add(1)
				}
				return name, nil
			})
		}
		if _, err := step("cart"); err != nil {
			return "", err
		}
		switch gen {
		case 1:
			if _, err := step("fraud"); err != nil { // the deliberate change
				return "", err
			}
		case 2:
			if durable.Version(ctx, "fraud", durable.DefaultVersion, 1) >= 1 {
				if _, err := step("fraud"); err != nil {
					return "", err
				}
			}
		}
		if _, err := step("pay"); err != nil {
			return "", err
		}
		if n > 0 { // run "waiting" waits here for a message
			if _, err := durable.Receive[string](ctx, "go"); err != nil {
				return "", err
			}
		}
		return step("ship")
	})
}

// shopJournal writes a journal file with one finished run and one that
// waits after "pay", and returns its path.
func shopJournal(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.journal")
	wf := shop(0)
	store, err := journal.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, err := durable.New(store, &durable.Config{Workflows: []durable.Definition{wf}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Run(t.Context(), e, wf, "done", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := durable.Start(t.Context(), e, wf, "waiting", 1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if h, _ := durable.History(t.Context(), store, "waiting"); len(h) == 2 { // cart, pay: at the Receive
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("run waiting did not reach its Receive")
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReplay(t *testing.T) {
	t.Parallel()
	path := shopJournal(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("same code", func(t *testing.T) {
		r := &recorder{TB: t}
		durabletest.Replay(r, path, shop(0))
		if len(r.errs) > 0 {
			t.Errorf("Replay reported errors for the code that wrote the journal: %q", r.errs)
		}
	})
	t.Run("executes no step", func(t *testing.T) {
		r := &recorder{TB: t}
		durabletest.Replay(r, path, shop(-1))
		if len(r.errs) > 0 || replayExecuted.Load() != 0 {
			t.Errorf("Replay: %q, %d steps executed; want none", r.errs, replayExecuted.Load())
		}
	})
	t.Run("changed code", func(t *testing.T) {
		r := &recorder{TB: t}
		durabletest.Replay(r, path, shop(1))
		if len(r.errs) != 2 || r.fatal {
			t.Fatalf("Replay reported %q, want one error per run", r.errs)
		}
		t.Logf("what Replay reports:\n%s", r.errs[1])
		for i, id := range []string{"done", "waiting"} {
			got := r.errs[i]
			for _, want := range []string{
				fmt.Sprintf("run %q", id), "would park", "position 1",
				`- journal: step "pay"`, `+ code:    called step "fraud"`, "replay_test.go:",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("report for run %s does not contain %q:\n%s", id, want, got)
				}
			}
		}
	})
	t.Run("version branch", func(t *testing.T) {
		r := &recorder{TB: t}
		durabletest.Replay(r, path, shop(2))
		if len(r.errs) > 0 {
			t.Errorf("Replay reported errors for a change behind Version: %q", r.errs)
		}
	})
	t.Run("unregistered", func(t *testing.T) {
		r := &recorder{TB: t}
		durabletest.Replay(r, path)
		if len(r.errs) != 2 || !strings.Contains(r.errs[0], "not registered") {
			t.Errorf("Replay with no workflows: %q, want two runs not registered", r.errs)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		r := &recorder{TB: t}
		durabletest.Replay(r, filepath.Join(t.TempDir(), "none.journal"))
		if !r.fatal {
			t.Errorf("Replay of a missing file: %q, want a fatal error", r.errs)
		}
	})

	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("Replay changed the journal file")
	}
}
