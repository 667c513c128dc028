package durable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/journal"
)

// A real crash between a cancel and what it cancels: the first process
// SIGKILLs itself right after the cancel of a scope is committed (crash
// point "cancel"), before the scope's running step and child hear of it;
// a second process resumes the run. The step must end canceled without
// running again (the replay reaches the cancel before the step is
// scheduled), and the child must end canceled (the replay asks again).

const (
	csRun   = "cs-run"
	csChild = "cs-run-child"
)

func csWorkflows(log *crashtest.Log) (*Workflow[int, string], *Workflow[int, string]) {
	child := Define("cs-child", func(ctx Context, _ int) (string, error) {
		return Receive[string](ctx, "never")
	})
	parent := Define("cs", func(ctx Context, _ int) (string, error) {
		ctx2, cancel := WithCancel(ctx)
		step := Go(ctx2, "slow", func(sctx context.Context) (int, error) {
			if err := log.Append("slow"); err != nil {
				return 0, err
			}
			<-sctx.Done()
			return 0, sctx.Err()
		})
		kid := StartChild(ctx2, child, csChild, 0)
		if err := Sleep(ctx, 100*time.Millisecond); err != nil { // the step runs meanwhile
			return "", err
		}
		cancel()
		_, errStep := step.Get(ctx)
		_, errKid := kid.Get(ctx)
		return fmt.Sprintf("step %v, child %v", errors.Is(errStep, ErrCanceled), errors.Is(errKid, ErrCanceled)), nil
	})
	return parent, child
}

// TestCancelScopeCrashChild is the child process of TestCancelScopeCrash;
// run directly it skips.
func TestCancelScopeCrashChild(t *testing.T) {
	phase := crashtest.Role()
	if phase == "" {
		t.Skip("TestCancelScopeCrash runs this as a child process")
	}
	log, err := crashtest.OpenLog(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if phase == "crash" {
		crashHook = func(p, runID string, at int) {
			if p != "cancel" || runID != csRun {
				return
			}
			fmt.Printf("CRASHPOINT %s %s %d\n", p, runID, at)
			os.Stdout.Sync()
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	wf, child := csWorkflows(log)
	e, err := Open(crashtest.Env("JOURNAL"), &Config{Workflows: []Definition{wf, child}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := Run(ctx, e, wf, csRun, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("RESULT %s\n", out)
}

func TestCancelScopeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "journal.db"), "LOG": filepath.Join(dir, "effects.log")}
	p := crashtest.Start(t, "TestCancelScopeCrashChild", "crash", env)
	err := p.Wait(t, time.Minute)
	p.WaitFor(t, "CRASHPOINT cancel", time.Second)
	if !killedBySignal(err) {
		t.Fatalf("first process: %v, want death by SIGKILL at the cancel", err)
	}
	p = crashtest.Start(t, "TestCancelScopeCrashChild", "resume", env)
	if err := p.Wait(t, time.Minute); err != nil {
		t.Fatalf("second process: %v; output:\n%s", err, strings.Join(p.Lines(), "\n"))
	}
	p.WaitFor(t, "RESULT step true, child true", time.Second)

	counts, err := crashtest.Count(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	if counts["slow"] != 1 {
		t.Errorf("the canceled step ran %d times, want 1 (not again after the crash)", counts["slow"])
	}
	s, err := journal.OpenBolt(env["JOURNAL"], &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kid, err := s.GetRun(t.Context(), csChild)
	if err != nil || kid.Status != journal.StatusCanceled {
		t.Errorf("child run: %v, %v; want canceled", kid.Status, err)
	}
	recs, err := s.Records(t.Context(), csRun)
	if err != nil {
		t.Fatal(err)
	}
	var cancels []string
	for _, r := range recs {
		if r.Kind == kindCancel {
			cancels = append(cancels, r.Name)
		}
	}
	if len(cancels) != 1 || cancels[0] != "scope 1" {
		t.Errorf("cancel records %q, want one of scope 1", cancels)
	}
}
