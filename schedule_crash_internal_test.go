package durable

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durable-go/durable/internal/crashtest"
)

// TestScheduleCrashChild is the child process of TestScheduleCrash; run
// directly it skips. Phase "crash" creates a schedule firing every second
// and SIGKILLs itself once its first firing's run is created, before the
// firing's step commits; phase "resume" reopens the journal and prints the
// schedule's first firing once its run completed.
func TestScheduleCrashChild(t *testing.T) {
	phase := crashtest.Role()
	if phase == "" {
		t.Skip("TestScheduleCrash runs this as a child process")
	}
	log, err := crashtest.OpenLog(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	job := Define("sc-job", func(ctx Context, n int) (int, error) {
		return Step(ctx, "work", func(context.Context) (int, error) { return n, log.Append("%s", ctx.RunID()) })
	})
	if phase == "crash" {
		crashHook = func(p, runID string, _ int) {
			if p != "schedule-fire" {
				return
			}
			fmt.Printf("CRASHPOINT %s %s\n", p, runID)
			os.Stdout.Sync()
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	e, err := Open(crashtest.Env("JOURNAL"), &Config{Workflows: []Definition{job}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if phase == "crash" {
		if err := e.CreateSchedule(ctx, "sc", Schedule{Workflow: "sc-job", Input: 7, Every: time.Second}); err != nil {
			t.Fatal(err)
		}
		<-ctx.Done()
		t.Fatal("the schedule did not fire")
	}
	for {
		info, err := e.GetSchedule(ctx, "sc")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(info.Recent); n > 0 {
			first := info.Recent[n-1]
			h, err := Attach(ctx, e, job, first.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Result(ctx); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("RESULT %s %s %s\n", first.Action, first.RunID, first.Slot.Format(time.RFC3339))
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the schedule did not fire after the restart")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A process killed after it created a firing's run and before the
// firing's step committed: the next process runs the step again, finds the
// run and starts no other for the slot, and the run completes.
func TestScheduleCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "journal.db"), "LOG": filepath.Join(dir, "effects.log")}
	p := crashtest.Start(t, "TestScheduleCrashChild", "crash", env)
	err := p.Wait(t, time.Minute)
	line := p.WaitFor(t, "CRASHPOINT schedule-fire", time.Second)
	if !killedBySignal(err) {
		t.Fatalf("first process: %v, want death by SIGKILL", err)
	}
	crashed := strings.Fields(line)[2] // the firing run created before the kill

	p = crashtest.Start(t, "TestScheduleCrashChild", "resume", env)
	if err := p.Wait(t, time.Minute); err != nil {
		t.Fatalf("second process: %v; output:\n%s", err, strings.Join(p.Lines(), "\n"))
	}
	res := strings.Fields(p.WaitFor(t, "RESULT ", time.Second))
	if res[1] != FiringStarted || res[2] != crashed || crashed != "sc@"+res[3] {
		t.Errorf("the first firing after the restart: %v; want started, run %s of its slot", res[1:], crashed)
	}
	counts, err := crashtest.Count(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	if counts[crashed] != 1 {
		t.Errorf("the crashed slot's run did its work %d times, want 1 (log %v)", counts[crashed], counts)
	}
}
