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
// The workflow (cPWorkflows): steps s1..s5 at positions 0..4, a sleep at
// 5, a receive at 6, a child (one step, c1) at 7.

const (
	cPSteps    = 5
	cPSleepPos = 5
	cPRecvPos  = 6
	cPChildPos = 7
	cPRun      = "cp-run"
	cPChildRun = "cp-run-child"
	cPMessage  = "hello"
	cPSleep    = 300 * time.Millisecond
)

// cPWant is the workflow's result: the sum of i*i, the message, the
// child's 7*10.
var cPWant = fmt.Sprintf("%d %s %d", 1+4+9+16+25, cPMessage, 70)

// cPWorkflows returns the crash point workflow and its child. Each step
// appends "run/step" to log. The workflow waits for gate before its first
// durable call.
func cPWorkflows(log *crashtest.Log, gate <-chan struct{}) (*Workflow[int, string], *Workflow[int, int]) {
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
		if err := Sleep(ctx, cPSleep); err != nil {
			return "", err
		}
		msg, err := Receive[string](ctx, "in")
		if err != nil {
			return "", err
		}
		c, err := RunChild(ctx, child, cPChildRun, 7)
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
	wf, child := cPWorkflows(log, gate)
	e, err := Open(crashtest.Env("JOURNAL"), &Config{Workflows: []Definition{wf, child}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := Start(ctx, e, wf, cPRun, cPSteps)
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
		if err := Send(ctx, e, cPRun, "in", cPMessage); err != nil {
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
		for _, pos := range []int{0, cPSteps / 2, cPSteps - 1} { // the first, a middle and the last step
			c := tc{point: p, target: cPRun, pos: pos}
			if p == "step-effect" { // it ran; its outcome was not committed
				c.twice = fmt.Sprintf("%s/s%d", cPRun, pos+1)
			}
			cases = append(cases, c)
		}
	}
	cases = append(cases,
		tc{point: "step-effect", target: cPChildRun, pos: 0, twice: cPChildRun + "/c1"},
		tc{point: "start", target: cPRun, pos: -1},
		tc{point: "start", target: cPChildRun, pos: -1}, // not reached: children are created by commit
		tc{point: "timer-fire", target: cPRun, pos: cPSleepPos},
		tc{point: "message-consume", target: cPRun, pos: cPRecvPos},
		tc{point: "child-start", target: cPRun, pos: cPChildPos},
		tc{point: "child-started", target: cPRun, pos: cPChildPos},
		tc{point: "complete", target: cPRun, pos: -1},
		tc{point: "complete", target: cPChildRun, pos: -1},
		tc{point: "completed", target: cPRun, pos: -1},
		tc{point: "completed", target: cPChildRun, pos: -1},
	)
	for _, c := range cases {
		name := c.point
		if c.target == cPChildRun {
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
			reached := c.point != "start" || c.target == cPRun
			p := crashtest.Start(t, "TestTortureCrashPointChild", "crash", env)
			err := p.Wait(t, time.Minute)
			if reached {
				p.WaitFor(t, "CRASHPOINT "+c.point, time.Second)
				if !killedBySignal(err) {
					t.Fatalf("first process: %v, want death by SIGKILL at %s", err, c.point)
				}
			} else if err != nil {
				t.Fatalf("first process: %v; output:\n%s", err, strings.Join(p.Lines(), "\n"))
			}

			p = crashtest.Start(t, "TestTortureCrashPointChild", "resume", env)
			if err := p.Wait(t, time.Minute); err != nil {
				t.Fatalf("second process: %v; output:\n%s", err, strings.Join(p.Lines(), "\n"))
			}
			p.WaitFor(t, "RESULT "+cPWant, time.Second)
			cPCheck(t, env, c.twice)
		})
	}
}

func killedBySignal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "signal: killed")
}

// cPCheck checks the effect log and the journal after the resume: each
// step ran once (twice is the one that may run again), the message was
// sent and received once, the timer was set once and fired once, the
// child was created once and its result reached the parent.
func cPCheck(t *testing.T, env map[string]string, twice string) {
	t.Helper()
	counts, err := crashtest.Count(env["LOG"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"sent": 1, cPChildRun + "/c1": 1}
	for i := 1; i <= cPSteps; i++ {
		want[fmt.Sprintf("%s/s%d", cPRun, i)] = 1
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
	child, err := s.GetRun(ctx, cPChildRun)
	if err != nil || child.Parent != cPRun || child.ParentPos != cPChildPos || child.Status != journal.StatusCompleted {
		t.Errorf("child run: %+v, %v; want completed, parent %s at %d", child, err, cPRun, cPChildPos)
	}
	recs, err := s.Records(ctx, cPRun)
	if err != nil {
		t.Fatal(err)
	}
	byPos := map[uint32][]journal.Record{}
	for _, r := range recs {
		byPos[r.Pos] = append(byPos[r.Pos], r)
	}
	if len(byPos) != cPChildPos+1 {
		t.Errorf("the run's journal has %d positions, want %d", len(byPos), cPChildPos+1)
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
	wantSeqs := map[uint32]int{cPSleepPos: 2, cPRecvPos: 1, cPChildPos: 2} // timer set + fired; receipt; start + result
	for pos := range uint32(cPSteps) {
		wantSeqs[pos] = 1
	}
	for pos, n := range wantSeqs {
		if len(byPos[pos]) != n {
			t.Errorf("position %d has %d records, want %d: %+v", pos, len(byPos[pos]), n, byPos[pos])
		}
	}
	if rs := byPos[cPSleepPos]; len(rs) > 0 && (rs[0].Kind != kindSleep || rs[0].Time.IsZero()) {
		t.Errorf("sleep position: %+v, want the timer's wake time first", rs[0])
	}
	if rs := byPos[cPRecvPos]; len(rs) == 1 {
		var m string
		if err := unmarshal(rs[0].Data, &m); err != nil || m != cPMessage {
			t.Errorf("received %q (%v), want %q", m, err, cPMessage)
		}
	}
	if rs := byPos[cPChildPos]; len(rs) > 0 && string(rs[0].Data) != cPChildRun {
		t.Errorf("child start record names %q, want %q", rs[0].Data, cPChildRun)
	}
	if msgs, err := s.Messages(ctx, cPRun, "in", 0); err != nil || len(msgs) != 0 {
		t.Errorf("inbox: %d messages left, %v; want none", len(msgs), err)
	}
}
