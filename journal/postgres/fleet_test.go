package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/internal/inspect"
	"github.com/durable-go/durable/journal"
	"github.com/durable-go/durable/journal/postgres"
	"github.com/durable-go/durable/journal/postgres/pgtest"
	"github.com/durable-go/durable/retry"
)

// The multi-process kill test: three worker processes (this test binary,
// re-executed) share one database and run a workload of steps, retries,
// sleeps, messages, fan-out to child runs and cancellations, while the
// parent SIGKILLs and restarts random workers, SIGSTOPs one past its lease
// and resumes it, and restarts PostgreSQL. Every step writes "begin" and
// "end" lines with its process id to an effect log (fsynced), and the
// parent writes its kills, stops and resumes there too; at the end the
// parent checks the results against a reference computed from the plan,
// the journal (no step recorded twice) and the log (a step attempt runs
// again only after the process that ran it was killed or stopped, so
// re-executions are bounded by what the kills and the stop interrupted;
// no two processes executing one run at once).

const fleetLease = 2 * time.Second

// fleetSpec is the input of a fleet job; every field follows from the run
// number, so the parent knows the reference result without executing
// anything.
type fleetSpec struct {
	ID       string // the run's own id, for its children's ids
	Steps    int    // sequential steps; step 1 fails its first attempt
	SleepMS  int    // a durable sleep after the steps
	Wait     bool   // then receive an int on "go"
	Children int    // then run this many child runs, each one step
	Cancel   bool   // the parent cancels it while it waits (Wait is set)
}

func fleetSpecOf(i int) fleetSpec {
	s := fleetSpec{ID: fleetRunID(i), Steps: 4 + i%3, SleepMS: 6000 + 1500*(i%4), Wait: i%3 == 0, Children: 2 * (i % 2)}
	if i%6 == 3 {
		s.Wait, s.Cancel = true, true
	}
	return s
}

// fleetWant is the reference result of run i: its output, or "" for a
// canceled run.
func fleetWant(i int) string {
	s := fleetSpecOf(i)
	if s.Cancel {
		return ""
	}
	sum := 0
	for k := range s.Steps {
		sum += k + 1
	}
	if s.Wait {
		sum += 7 // the message the parent sends
	}
	for c := range s.Children {
		sum += (c + 1) * 10
	}
	return strconv.Itoa(sum)
}

func fleetRunID(i int) string { return fmt.Sprintf("job-%02d", i) }

// effects is the worker's effect log.
var effects *crashtest.Log

// effectStep is a step that logs its execution; failFirst makes its first
// attempt fail (the retry policy tries again).
func effectStep(v int, failFirst bool) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		info, _ := durable.StepInfoFrom(ctx)
		pid := os.Getpid()
		if err := effects.Append("begin %d %s %s %d %s", pid, info.RunID, info.Step, info.Attempt, stamp()); err != nil {
			return 0, err
		}
		time.Sleep(100 * time.Millisecond) // a window for the kills
		if err := effects.Append("end %d %s %s %d %s", pid, info.RunID, info.Step, info.Attempt, stamp()); err != nil {
			return 0, err
		}
		if failFirst && info.Attempt == 1 {
			return 0, errors.New("planned failure")
		}
		return v, nil
	}
}

var fleetRetry = durable.WithRetry(retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(50 * time.Millisecond)})

var fleetChild = durable.Define("fleet-child", func(ctx durable.Context, c int) (int, error) {
	return durable.Step(ctx, "child-step", effectStep((c+1)*10, false), fleetRetry)
})

var fleetJob = durable.Define("fleet-job", func(ctx durable.Context, s fleetSpec) (int, error) {
	sum := 0
	for k := range s.Steps {
		v, err := durable.Step(ctx, "step-"+strconv.Itoa(k), effectStep(k+1, k == 1), fleetRetry)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	if err := durable.Sleep(ctx, time.Duration(s.SleepMS)*time.Millisecond); err != nil {
		return 0, err
	}
	if s.Wait {
		m, err := durable.Receive[int](ctx, "go")
		if err != nil {
			return 0, err
		}
		sum += m
	}
	var fs []*durable.Future[int]
	for c := range s.Children {
		id := s.ID + "-child-" + strconv.Itoa(c)
		fs = append(fs, durable.StartChild(ctx, fleetChild, id, c))
	}
	for _, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
})

// TestFleetWorker is a worker process of TestFleetKill.
func TestFleetWorker(t *testing.T) {
	if crashtest.Role() != "fleet-worker" {
		t.Skip("run as a child process by TestFleetKill")
	}
	var err error
	if effects, err = crashtest.OpenLog(crashtest.Env("LOG")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The worker's logs go to its stderr, which the parent prints when
	// the test fails.
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", os.Getpid())
	s, err := postgres.Open(ctx, crashtest.Env("URL"), &postgres.Options{Schema: crashtest.Env("SCHEMA"),
		LeaseTimeout: fleetLease, PollInterval: 200 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e, err := durable.New(s, &durable.Config{Workflows: []durable.Definition{fleetJob, fleetChild}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	// Each worker starts its share of the runs (Start of a run that
	// exists attaches to it: a restarted worker starts nothing again).
	idx, _ := strconv.Atoi(crashtest.Env("INDEX"))
	runs, _ := strconv.Atoi(crashtest.Env("RUNS"))
	for i := idx; i < runs; i += 3 {
		if _, err := durable.Start(ctx, e, fleetJob, fleetRunID(i), fleetSpecOf(i)); err != nil {
			t.Fatalf("Start(%s) = %v", fleetRunID(i), err)
		}
	}
	fmt.Println("ready")
	select {} // until the parent kills it
}

func TestFleetKill(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the fleet kill test takes a minute")
	}
	url := pgtest.Private(t) // a server of its own: the test restarts it
	schema := pgtest.Schema(t, url)
	logPath := filepath.Join(t.TempDir(), "effects.log")
	log, err := crashtest.OpenLog(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, logPath, 80)
		}
	})
	const runs, workers = 36, 3
	env := func(i int) map[string]string {
		return map[string]string{"URL": url, "SCHEMA": schema, "LOG": logPath, "INDEX": strconv.Itoa(i), "RUNS": strconv.Itoa(runs)}
	}
	procs := make([]*crashtest.Proc, workers)
	start := func(i int) {
		procs[i] = crashtest.Start(t, "TestFleetWorker", "fleet-worker", env(i))
		procs[i].WaitFor(t, "ready", 2*time.Minute)
	}
	for i := range workers {
		start(i)
	}

	// A client: an engine with no workflows executes nothing; it sends,
	// cancels and reads.
	ctx := t.Context()
	cs, err := postgres.Open(ctx, url, &postgres.Options{Schema: schema, LeaseTimeout: fleetLease, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	client, err := durable.New(cs, &durable.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	// Messages and cancels go out from the client: to the first half of
	// the runs a while after the start (some wait for them by then, their
	// owners hear of them by NOTIFY; others get there later), to the
	// second half once the schedule of faults is over. So the workload
	// cannot end before the schedule does, however fast or slow the
	// machine: the runs that wait for the second half hold it open.
	deliver := func(from, to int) {
		for i := from; i < to; i++ {
			var err error
			switch s := fleetSpecOf(i); {
			case s.Cancel:
				err = client.Cancel(ctx, fleetRunID(i))
			case s.Wait:
				err = durable.Send(ctx, client, fleetRunID(i), "go", 7)
			}
			if err != nil {
				t.Fatalf("send or cancel to %s: %v", fleetRunID(i), err)
			}
		}
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills, stops, restarts := 0, 0, 0
	done := func() bool {
		rs, err := cs.ListRuns(ctx, journal.Filter{Status: journal.StatusRunning})
		return err == nil && len(rs) == 0
	}
	deadline := time.Now().Add(3 * time.Minute)
	for step := 0; !done(); step++ {
		if time.Now().After(deadline) {
			rs, _ := cs.ListRuns(ctx, journal.Filter{Status: journal.StatusRunning})
			for _, r := range rs {
				t.Errorf("run %s still running after 3 minutes: owner %q, idle %v, cancel requested %v, wakes at %v",
					r.ID, r.Owner, r.Idle, r.CancelRequested, r.WakeAt)
			}
			break
		}
		switch step {
		case 2:
			deliver(0, runs/2)
		case 7: // after the last fault
			deliver(runs/2, runs)
		}
		switch step {
		case 1, 2, 3, 5: // SIGKILL a random worker, start it again
			i := rng.IntN(workers)
			pid := procs[i].Cmd.Process.Pid
			// Kill it while it executes a step, if it does within a
			// while: at-least-once is what the kill is about.
			busy := waitBusy(logPath, pid, 3*time.Second)
			t.Logf("step %d: SIGKILL worker %d (pid %d, executing a step: %v), start it again", step, i, pid, busy)
			procs[i].Kill(t) // returns once the process is gone: every line it wrote is before ours
			log.Append("kill %d %s", pid, stamp())
			kills++
			start(i)
		case 4: // SIGSTOP one past its lease: its runs move; when it wakes, its commits are fenced out
			i := rng.IntN(workers)
			p := procs[i].Cmd.Process
			t.Logf("step %d: SIGSTOP worker %d (pid %d) for %v", step, i, p.Pid, 2*fleetLease+time.Second)
			p.Signal(syscall.SIGSTOP)
			waitStopped(t, p.Pid) // every line it wrote before the stop is before ours
			log.Append("stop %d %s", p.Pid, stamp())
			stops++
			time.Sleep(2*fleetLease + time.Second)
			log.Append("cont %d %s", p.Pid, stamp())
			p.Signal(syscall.SIGCONT)
		case 6: // PostgreSQL restarts under the fleet
			t.Logf("step %d: restart PostgreSQL", step)
			pgtest.Restart(t)
			restarts++
		}
		time.Sleep(300 * time.Millisecond)
	}
	if kills < 4 || stops < 1 || restarts < 1 {
		t.Errorf("the runs finished before the schedule did: %d kills, %d stops, %d server restarts (the runs that wait for the last deliveries should have held it open)", kills, stops, restarts)
	}

	// Every run ends as the reference says.
	for i := range runs {
		id := fleetRunID(i)
		r, err := cs.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := fleetWant(i)
		switch {
		case r.Status == journal.StatusRunning: // reported above
		case want == "" && r.Status != journal.StatusCanceled:
			t.Errorf("run %s: %s, want canceled", id, r.Status)
		case want != "" && (r.Status != journal.StatusCompleted || inspect.DescribePayload(r.Output) != want):
			t.Errorf("run %s: %s with %s, want completed with %s (error: %s)", id, r.Status, inspect.DescribePayload(r.Output), want, inspect.DescribePayload(r.Err))
		}
	}
	checkFleetJournal(t, cs, runs)
	checkFleetEffects(t, logPath, kills, stops)
}

// checkFleetJournal: no step has two outcomes in any run's journal (its
// failed attempts are records too; its outcome is the one with the done
// flag).
func checkFleetJournal(t *testing.T, s *postgres.Store, runs int) {
	all, err := s.ListRuns(t.Context(), journal.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		recs, err := s.Records(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, rec := range recs {
			if rec.Kind == 1 && rec.Flags&1 != 0 { // a step's outcome (kindStep, flagDone)
				seen[fmt.Sprintf("%d %s", rec.Pos, rec.Name)]++
			}
		}
		for k, n := range seen {
			if n > 1 {
				t.Errorf("run %s: %q recorded %d times", r.ID, k, n)
			}
		}
	}
}

// checkFleetEffects reads the effect log: no two processes ever execute
// steps of one run at once (a killed process's executions end at its
// kill; a stopped process's executions under way when it stopped may end
// after it resumes, fenced out, but it begins no step of a run another
// process is executing), and a step attempt executes again only after
// the process that executed it was killed or stopped (at-least-once
// because of a fault, never for another reason: a server restart, say).
// Each error shows the run's lines of the log, with the faults, so it
// explains itself.
func checkFleetEffects(t *testing.T, path string, kills, stops int) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	explain := func(run string) string {
		var out []string
		for i, l := range lines {
			f := strings.Fields(l)
			if len(f) == 3 || len(f) > 2 && f[2] == run {
				out = append(out, fmt.Sprintf("%4d %s", i+1, l))
			}
		}
		return strings.Join(out, "\n")
	}
	type open struct {
		pid    string
		line   int
		exempt bool // began before its process was stopped
	}
	type exec struct {
		pid         string
		line        int
		interrupted bool // its process was killed or stopped after it began
	}
	active := map[string][]open{} // run -> executions under way
	execs := map[string][]*exec{} // "run step attempt" -> executions
	byPid := map[string][]*exec{} // pid -> its executions
	total, again := 0, 0
	for n, line := range lines {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && (f[0] == "kill" || f[0] == "stop"):
			for _, x := range byPid[f[1]] {
				x.interrupted = true
			}
			for run, os := range active {
				if f[0] == "kill" {
					active[run] = slices.DeleteFunc(os, func(o open) bool { return o.pid == f[1] })
					continue
				}
				for i := range os {
					if os[i].pid == f[1] {
						active[run][i].exempt = true
					}
				}
			}
		case len(f) == 3 && f[0] == "cont":
		case len(f) == 6 && f[0] == "begin":
			pid, run, key := f[1], f[2], f[2]+" "+f[3]+" "+f[4]
			for _, o := range active[run] {
				if o.pid != pid && !o.exempt {
					t.Errorf("line %d: process %s began %s while process %s was executing a step of that run (since line %d); the run's log:\n%s",
						n+1, pid, key, o.pid, o.line+1, explain(run))
				}
			}
			for _, x := range execs[key] {
				if !x.interrupted {
					t.Errorf("line %d: process %s executed %s again after process %s did (line %d), which was neither killed nor stopped; the run's log:\n%s",
						n+1, pid, key, x.pid, x.line+1, explain(run))
				}
			}
			total++
			if len(execs[key]) > 0 {
				again++
			}
			active[run] = append(active[run], open{pid: pid, line: n})
			x := &exec{pid: pid, line: n}
			execs[key] = append(execs[key], x)
			byPid[pid] = append(byPid[pid], x)
		case len(f) == 6 && f[0] == "end":
			pid, run := f[1], f[2]
			for i, o := range active[run] {
				if o.pid == pid {
					active[run] = append(active[run][:i:i], active[run][i+1:]...)
					break
				}
			}
		default:
			t.Fatalf("effect log line %d: bad line %q", n+1, line)
		}
	}
	t.Logf("%d step executions, %d of them again; %d kills, %d stops", total, again, kills, stops)
}

// waitBusy waits up to d for process pid to be executing a step (a
// "begin" of it without its "end" in the effect log at path) and reports
// whether it is.
func waitBusy(path string, pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	p := strconv.Itoa(pid)
	for {
		b, _ := os.ReadFile(path)
		open := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) == 6 && f[1] == p {
				open[f[2]+" "+f[3]+" "+f[4]] = f[0] == "begin"
			}
		}
		for _, o := range open {
			if o {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stamp is the time for the effect log: when a failure is read.
func stamp() string { return time.Now().UTC().Format("15:04:05.000000") }

// waitStopped waits until process pid is stopped (Linux: state T in
// /proc/pid/stat); elsewhere it gives the signal a moment.
func waitStopped(t *testing.T, pid int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			time.Sleep(100 * time.Millisecond) // no /proc
			return
		}
		// pid (comm) state ...: the state follows the last ')'.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("process %d did not stop within 10s of SIGSTOP", pid)
}

// logTail prints the last n lines of the effect log at path, to explain a
// failure.
func logTail(t *testing.T, path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("effect log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	from := max(0, len(lines)-n)
	t.Logf("effect log %s, lines %d to %d of %d:\n%s", path, from+1, len(lines), len(lines), strings.Join(lines[from:], "\n"))
}
