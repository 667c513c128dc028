package durable_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/crashtest"
)

// The queue crash test: a child process starts 12 runs on a queue of two
// slots and is killed (SIGKILL) while runs execute and others wait; a
// second process opens the journal and finishes them all. The runs
// admitted by the first process count against the limit in the second
// (the journal counts them), no waiting run is lost, and no process ever
// executed more than two of the queue's steps at once.

const queueCrashRuns = 12

var queueCrashLog *crashtest.Log

var queueCrashWF = durable.Define("q-crash", func(ctx durable.Context, n int) (int, error) {
	return durable.Step(ctx, "work", func(context.Context) (int, error) {
		id := fmt.Sprintf("q%02d", n)
		if err := queueCrashLog.Append("enter %d %s", os.Getpid(), id); err != nil {
			return 0, err
		}
		time.Sleep(20 * time.Millisecond) // work, so that runs overlap
		if err := queueCrashLog.Append("leave %d %s", os.Getpid(), id); err != nil {
			return 0, err
		}
		return n * n, nil
	})
})

func TestQueueCrashChild(t *testing.T) {
	if crashtest.Role() == "" {
		t.Skip("run as a child by TestQueueCrash")
	}
	var err error
	if queueCrashLog, err = crashtest.OpenLog(crashtest.Env("LOG")); err != nil {
		t.Fatal(err)
	}
	e, err := durable.Open(crashtest.Env("JOURNAL"), quiet(&durable.Config{
		Workflows: []durable.Definition{queueCrashWF},
		Queues:    map[string]durable.Queue{"q": {Concurrency: 2}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	var hs []*durable.Handle[int]
	for i := range queueCrashRuns {
		// The second process starts the same ids: it gets the runs the
		// first one made.
		h, err := durable.Start(ctx, e, queueCrashWF, fmt.Sprintf("q%02d", i), i, durable.OnQueue("q"))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	fmt.Println("q: started")
	for i, h := range hs {
		got, err := h.Result(ctx)
		if err != nil || got != i*i {
			t.Fatalf("run %d: %v, %v", i, got, err)
		}
	}
	fmt.Println("q: done")
}

func TestQueueCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"JOURNAL": filepath.Join(dir, "journal.db"), "LOG": filepath.Join(dir, "effects.log")}
	p := crashtest.Start(t, "TestQueueCrashChild", "q-first", env)
	p.WaitFor(t, "q: started", 30*time.Second)
	// Kill it once some runs ran and others wait.
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(env["LOG"])
		if strings.Count(string(b), "leave ") >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Kill(t)

	q := crashtest.Start(t, "TestQueueCrashChild", "q-second", env)
	q.WaitFor(t, "q: done", 60*time.Second)
	if err := q.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("second child: %v", err)
	}

	b, err := os.ReadFile(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]int{} // by pid
	peak := map[string]int{}
	entered := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue // a torn last line of the killed child
		}
		switch f[0] {
		case "enter":
			live[f[1]]++
			peak[f[1]] = max(peak[f[1]], live[f[1]])
			entered[f[2]] = true
		case "leave":
			live[f[1]]--
		}
	}
	if len(peak) != 2 {
		t.Fatalf("steps ran in %d processes, want 2 (the killed one and the second): %v", len(peak), peak)
	}
	for pid, n := range peak {
		if n > 2 {
			t.Errorf("process %s ran %d of the queue's steps at once, more than its Concurrency 2", pid, n)
		}
	}
	if len(entered) != queueCrashRuns {
		t.Errorf("%d runs executed their step, want all %d", len(entered), queueCrashRuns)
	}
}
