package durable

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/journal"
)

// Named crash points: a child process sets crashHook to SIGKILL itself at
// one point of crashpoint.go (for one run, and one position where the
// point is per-operation); a second process, without the hook, resumes the
// run; the test then checks the outcome, the side-effect log and the
// journal.
//
// The workflow (ttCPWorkflows): steps s1..s5 at positions 0..4, a sleep at
// 5, a receive at 6, a child (one step, c1) at 7.

const (
	ttCPSteps    = 5
	ttCPSleepPos = 5
	ttCPRecvPos  = 6
	ttCPChildPos = 7
	ttCPRun      = "cp-run"
	ttCPChildRun = "cp-run-child"
	ttCPMessage  = "hello"
	ttCPSleep    = 300 * time.Millisecond
)

// ttCPWant is the workflow's result: the sum of i*i, the message, the
// child's 7*10.
var ttCPWant = fmt.Sprintf("%d %s %d", 1+4+9+16+25, ttCPMessage, 70)

// ttCPWorkflows returns the crash point workflow and its child. Each step
// appends "run/step" to log. The workflow waits for gate before its first
// durable call.
func ttCPWorkflows(log *crashtest.Log, gate <-chan struct{}) (*Workflow[int, string], *Workflow[int, int]) {
	child := Define("cp-child", func(ctx Context, in int) (int, error) {
		return Step(ctx, "c1", func(context.Context) (int, error) {
			return in * 10, log.Append("%s/c1", ctx.RunID())
		})
	})
	parent := Define("cp", func(ctx Context, n int) (string, error) {
		<-gate
		sum := 0
		for i := 1; i <= n; i++ {
			v, err := Step(ctx, fmt.Sprintf("s%d", i), func(context.Context) (int, error) {
				return i * i, log.Append("%s/s%d", ctx.RunID(), i)
			})
			if err != nil {
				return "", err
			}
			sum += v
		}
		if err := Sleep(ctx, ttCPSleep); err != nil {
			return "", err
		}
		msg, err := Receive[string](ctx, "in")
		if err != nil {
			return "", err
		}
		c, err := RunChild(ctx, child, ttCPChildRun, 7)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s %d", sum, msg, c), nil
	})
	return parent, child
}

// TestTortureCrashPointChild is the child process of TestTortureCrashPoints;
// run directly it skips. Phase "crash" sets the hook and must die; phase
// "resume" runs the workflow to its end and prints RESULT.
func TestTortureCrashPointChild(t *testing.T) {
	phase := crashtest.Role()
	if phase == "" {
		t.Skip("TestTortureCrashPoints runs this as a child process")
	}
	log, err := crashtest.OpenLog(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	gate := make(chan struct{})
	if phase == "crash" {
		point, target := crashtest.Env("POINT"), crashtest.Env("TARGET")
		pos, _ := strconv.Atoi(crashtest.Env("POS"))
		crashHook = func(p, runID string, at int) {
			if p != point || runID != target || (pos >= 0 && at != pos) {
				return
			}
			fmt.Printf("CRASHPOINT %s %s %d\n", p, runID, at)
			os.Stdout.Sync()
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	} else {
		close(gate)
	}
	wf, child := ttCPWorkflows(log, gate)
	e, err := Open(crashtest.Env("JOURNAL"), &Config{Workflows: []Definition{wf, child}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := Start(ctx, e, wf, ttCPRun, ttCPSteps)
	if err != nil {
		t.Fatal(err)
	}
	// The message is sent once: by the first process unless it died
	// before (at "start", inside Start), else by the second.
	counts, err := crashtest.Count(crashtest.Env("LOG"))
	if err != nil {
		t.Fatal(err)
	}
	if counts["sent"] == 0 {
		if err := Send(ctx, e, ttCPRun, "in", ttCPMessage); err != nil {
			t.Fatal(err)
		}
		if err := log.Append("sent"); err != nil {
			t.Fatal(err)
		}
	}
	if phase == "crash" {
		close(gate)
	}
	out, err := h.Result(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("RESULT %s\n", out)
}

func TestTortureCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	t.Parallel()
	type tc struct {
		point  string
		target string // the run whose point kills
		pos    int    // -1: any (run-level points)
		twice  string // the step that runs twice ("run/step"), if any
	}
	var cases []tc
	for _, p := range []string{"step-before", "step-effect", "step-commit"} {
		for _, pos := range []int{0, ttCPSteps / 2, ttCPSteps - 1} { // the first, a middle and the last step
			c := tc{point: p, target: ttCPRun, pos: pos}
			if p == "step-effect" { // it ran; its outcome was not committed
				c.twice = fmt.Sprintf("%s/s%d", ttCPRun, pos+1)
			}
			cases = append(cases, c)
		}
	}
	cases = append(cases,
		tc{point: "step-effect", target: ttCPChildRun, pos: 0, twice: ttCPChildRun + "/c1"},
		tc{point: "start", target: ttCPRun, pos: -1},
		tc{point: "start", target: ttCPChildRun, pos: -1}, // not reached: children are created by commit
		tc{point: "timer-fire", target: ttCPRun, pos: ttCPSleepPos},
		tc{point: "message-consume", target: ttCPRun, pos: ttCPRecvPos},
		tc{point: "child-start", target: ttCPRun, pos: ttCPChildPos},
		tc{point: "child-started", target: ttCPRun, pos: ttCPChildPos},
		tc{point: "complete", target: ttCPRun, pos: -1},
		tc{point: "complete", target: ttCPChildRun, pos: -1},
		tc{point: "completed", target: ttCPRun, pos: -1},
		tc{point: "completed", target: ttCPChildRun, pos: -1},
	)
	for _, c := range cases {
		name := c.point
		if c.target == ttCPChildRun {
			name += "/child"
		}
		if c.pos >= 0 {
			name += "/" + strconv.Itoa(c.pos)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := map[string]string{
				"JOURNAL": filepath.Join(dir, "journal.db"),
				"LOG":     filepath.Join(dir, "effects.log"),
				"POINT":   c.point,
				"TARGET":  c.target,
				"POS":     strconv.Itoa(c.pos),
			}
			reached := c.point != "start" || c.target == ttCPRun
			p := crashtest.Start(t, "TestTortureCrashPointChild", "crash", env)
			err := p.Wait(t, time.Minute)
			if reached {
				p.WaitFor(t, "CRASHPOINT "+c.point, time.Second)
				if !ttKilledBySignal(err) {
					t.Fatalf("first process: %v, want death by SIGKILL at %s", err, c.point)
				}
			} else if err != nil {
				t.Fatalf("first process: %v; output:\n%s", err, strings.Join(p.Lines(), "\n"))
			}

			p = crashtest.Start(t, "TestTortureCrashPointChild", "resume", env)
			if err := p.Wait(t, time.Minute); err != nil {
				t.Fatalf("second process: %v; output:\n%s", err, strings.Join(p.Lines(), "\n"))
			}
			p.WaitFor(t, "RESULT "+ttCPWant, time.Second)
			ttCPCheck(t, env, c.twice)
		})
	}
}

func ttKilledBySignal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "signal: killed")
}

// ttCPCheck checks the effect log and the journal after the resume: each
// step ran once (twice is the one that may run again), the message was
// sent and received once, the timer was set once and fired once, the
// child was created once and its result reached the parent.
func ttCPCheck(t *testing.T, env map[string]string, twice string) {
	t.Helper()
	counts, err := crashtest.Count(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"sent": 1, ttCPChildRun + "/c1": 1}
	for i := 1; i <= ttCPSteps; i++ {
		want[fmt.Sprintf("%s/s%d", ttCPRun, i)] = 1
	}
	if twice != "" {
		want[twice] = 2
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("effect log: %q %d times, want %d", k, counts[k], n)
		}
	}
	for k, n := range counts {
		if _, ok := want[k]; !ok {
			t.Errorf("effect log: unexpected %q (%d times)", k, n)
		}
	}

	ctx := t.Context()
	s, err := journal.OpenBolt(env["JOURNAL"], &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("Verify: %v, %v", rep.Problems, err)
	}
	runs, err := s.ListRuns(ctx, journal.Filter{})
	if err != nil || len(runs) != 2 {
		t.Fatalf("ListRuns: %d runs, %v; want the run and its child", len(runs), err)
	}
	child, err := s.GetRun(ctx, ttCPChildRun)
	if err != nil || child.Parent != ttCPRun || child.ParentPos != ttCPChildPos || child.Status != journal.StatusCompleted {
		t.Errorf("child run: %+v, %v; want completed, parent %s at %d", child, err, ttCPRun, ttCPChildPos)
	}
	recs, err := s.Records(ctx, ttCPRun)
	if err != nil {
		t.Fatal(err)
	}
	byPos := map[uint32][]journal.Record{}
	for _, r := range recs {
		byPos[r.Pos] = append(byPos[r.Pos], r)
	}
	if len(byPos) != ttCPChildPos+1 {
		t.Errorf("the run's journal has %d positions, want %d", len(byPos), ttCPChildPos+1)
	}
	for pos, rs := range byPos {
		for i, r := range rs {
			if r.Seq != uint32(i) {
				t.Errorf("position %d: record seq %d at index %d", pos, r.Seq, i)
			}
			last := i == len(rs)-1
			if done := r.Flags&flagDone != 0; done != last {
				t.Errorf("position %d: record %d done=%v; want only the last one done", pos, r.Seq, done)
			}
		}
	}
	wantSeqs := map[uint32]int{ttCPSleepPos: 2, ttCPRecvPos: 1, ttCPChildPos: 2} // timer set + fired; receipt; start + result
	for pos := range uint32(ttCPSteps) {
		wantSeqs[pos] = 1
	}
	for pos, n := range wantSeqs {
		if len(byPos[pos]) != n {
			t.Errorf("position %d has %d records, want %d: %+v", pos, len(byPos[pos]), n, byPos[pos])
		}
	}
	if rs := byPos[ttCPSleepPos]; len(rs) > 0 && (rs[0].Kind != kindSleep || rs[0].Time.IsZero()) {
		t.Errorf("sleep position: %+v, want the timer's wake time first", rs[0])
	}
	if rs := byPos[ttCPRecvPos]; len(rs) == 1 {
		var m string
		if err := unmarshal(rs[0].Data, &m); err != nil || m != ttCPMessage {
			t.Errorf("received %q (%v), want %q", m, err, ttCPMessage)
		}
	}
	if rs := byPos[ttCPChildPos]; len(rs) > 0 && string(rs[0].Data) != ttCPChildRun {
		t.Errorf("child start record names %q, want %q", rs[0].Data, ttCPChildRun)
	}
	if msgs, err := s.Messages(ctx, ttCPRun, "in", 0); err != nil || len(msgs) != 0 {
		t.Errorf("inbox: %d messages left, %v; want none", len(msgs), err)
	}
}
