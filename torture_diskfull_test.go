//go:build linux

package durable_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	ossignal "os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/journal"
)

// A full disk, made real with RLIMIT_FSIZE in a child process: once the
// journal cannot grow, commits fail with EFBIG (SIGXFSZ is ignored). A
// failed commit must leave no partial record, the run must be suspended,
// not failed, and it must go on by itself once there is space again (the
// engine loads a suspended run again every second), or after a restart.

const (
	dFSteps   = 60
	dFPayload = 2000
	dFRun     = "df"
)

// dFWorkflow writes dFSteps steps of dFPayload bytes each (so the
// journal must grow) and returns the bytes it got back. Each execution
// of step i appends "df/sNNN" to log.
func dFWorkflow(log *crashtest.Log) *durable.Workflow[int, int] {
	return durable.Define("tt-diskfull", func(ctx durable.Context, n int) (int, error) {
		total := 0
		for i := range n {
			v, err := durable.Step(ctx, fmt.Sprintf("s%03d", i), func(context.Context) (string, error) {
				if err := log.Append("%s/s%03d", ctx.RunID(), i); err != nil {
					return "", err
				}
				return strings.Repeat(string(rune('a'+i%26)), dFPayload), nil
			})
			if err != nil {
				return 0, err
			}
			total += len(v)
		}
		return total, nil
	})
}

// suspendWatch is a slog handler that counts the engine's "run
// suspended" errors and passes every record on to stderr.
type suspendWatch struct {
	slog.Handler
	n chan struct{}
}

func (h suspendWatch) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "suspended") {
		select {
		case h.n <- struct{}{}:
		default:
		}
	}
	return h.Handler.Handle(ctx, r)
}

// TestTortureDiskFullChild is the child process of TestTortureDiskFull;
// run directly it skips. It fills the disk (RLIMIT_FSIZE at twice the new
// journal's size), waits until the run was suspended twice (the first failure and a
// failed retry), prints FULL, and then either waits to be killed (role
// "kill") or makes space again and waits for the run to finish (role
// "space").
func TestTortureDiskFullChild(t *testing.T) {
	role := crashtest.Role()
	if role != "kill" && role != "space" {
		t.Skip("TestTortureDiskFull runs this as a child process")
	}
	log, err := crashtest.OpenLog(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	watch := suspendWatch{Handler: slog.NewTextHandler(os.Stderr, nil), n: make(chan struct{}, 16)}
	wf := dFWorkflow(log)
	path := crashtest.Env("JOURNAL")
	e, err := durable.Open(path, &durable.Config{Workflows: []durable.Definition{wf}, Logger: slog.New(watch)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	ossignal.Ignore(syscall.SIGXFSZ)
	full := old
	full.Cur = 2 * uint64(fi.Size()) // some steps commit before the disk is full
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LIMIT %d\n", full.Cur)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := durable.Start(ctx, e, wf, dFRun, dFSteps)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-watch.n:
		case <-ctx.Done():
			t.Fatal("the run was not suspended: the disk never filled")
		}
	}
	if info, err := e.Get(ctx, dFRun); err != nil || info.Status != durable.StatusRunning {
		t.Fatalf("while the disk is full: %v, %v; want the run running (suspended, not failed)", info.Status, err)
	}
	fmt.Println("FULL")
	if role == "kill" {
		select {} // the parent kills this process
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	out, err := h.Result(ctx)
	if err != nil {
		t.Fatalf("after space came back: %v", err)
	}
	fmt.Printf("RESULT %d\n", out)
}

func TestTortureDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a disk in a child process")
	}
	t.Parallel()
	for _, mode := range []string{"space", "kill"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := map[string]string{"JOURNAL": filepath.Join(dir, "journal.db"), "LOG": filepath.Join(dir, "effects.log")}
			p := crashtest.Start(t, "TestTortureDiskFullChild", mode, env)
			p.WaitFor(t, "FULL", time.Minute)
			if mode == "kill" {
				p.Kill(t)
				dFCheckJournal(t, env["JOURNAL"], false)
				// Restarted with space: the run resumes where it was.
				log, err := crashtest.OpenLog(env["LOG"])
				if err != nil {
					t.Fatal(err)
				}
				defer log.Close()
				wf := dFWorkflow(log)
				e, err := durable.Open(env["JOURNAL"], quiet(config(wf)))
				if err != nil {
					t.Fatalf("Open after the disk was full: %v", err)
				}
				got, err := durable.Run(testCtx(t), e, wf, dFRun, dFSteps)
				mustClose(t, e)
				if err != nil || got != dFSteps*dFPayload {
					t.Fatalf("run after a restart: %d, %v; want %d", got, err, dFSteps*dFPayload)
				}
			} else {
				if err := p.Wait(t, time.Minute); err != nil {
					t.Fatalf("child: %v; output:\n%s", err, strings.Join(p.Lines(), "\n"))
				}
				p.WaitFor(t, fmt.Sprintf("RESULT %d", dFSteps*dFPayload), time.Second)
			}
			dFCheckJournal(t, env["JOURNAL"], true)
			counts, err := crashtest.Count(env["LOG"])
			if err != nil {
				t.Fatal(err)
			}
			again := 0
			for i := range dFSteps {
				n := counts[fmt.Sprintf("%s/s%03d", dFRun, i)]
				if n < 1 {
					t.Errorf("step %d never executed", i)
				}
				again += n - 1
			}
			t.Logf("%s: %s; %d steps executed again (their commits failed)", mode, p.Lines()[1], again)
		})
	}
}

// dFCheckJournal checks that the journal holds only complete records:
// Verify finds nothing, and each position has exactly one record, the
// step's result. If complete, the run must have finished.
func dFCheckJournal(t *testing.T, path string, complete bool) {
	t.Helper()
	s, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("OpenBolt after the disk was full: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify: %v, %v", rep.Problems, err)
	}
	recs, err := s.Records(ctx, dFRun)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Pos != uint32(i) || r.Seq != 0 || len(r.Data) < dFPayload || r.Name != fmt.Sprintf("s%03d", i) {
			t.Fatalf("record %d: %d.%d %q with %d bytes; want %d.0 \"s%03d\" with the step's result", i, r.Pos, r.Seq, r.Name, len(r.Data), i, i)
		}
	}
	run, err := s.GetRun(ctx, dFRun)
	if err != nil {
		t.Fatal(err)
	}
	if complete && (run.Status != journal.StatusCompleted || len(recs) != dFSteps) {
		t.Fatalf("run %v with %d records; want completed with %d", run.Status, len(recs), dFSteps)
	}
	if !complete && (run.Status != journal.StatusRunning || len(recs) >= dFSteps) {
		t.Fatalf("run %v with %d records while the disk was full; want running with fewer than %d", run.Status, len(recs), dFSteps)
	}
	t.Logf("journal: %d records, run %v", len(recs), run.Status)
}
