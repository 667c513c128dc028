package durable_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/durable-go/durable"
)

// The crash tests kill real processes: the test binary runs itself again
// as a child (TestCrashChild) that opens a bbolt journal and runs a
// workflow of sequential steps. Each step appends "run/step" to a side
// effect log, fsynced, before it returns, so the log shows every execution
// of every step, including those whose result never reached the journal.
// The parent kills the child with SIGKILL, starts it again until the
// workflow completes, and then checks the log against the journal.

var crashKills = flag.Int("durable.crashes", 0, "number of random kills in TestCrashRandomKills (default 5; or env DURABLE_CRASHES)")

const (
	crashEnvChild   = "DURABLE_CRASH_CHILD"
	crashEnvJournal = "DURABLE_CRASH_JOURNAL"
	crashEnvLog     = "DURABLE_CRASH_LOG"
	crashEnvRun     = "DURABLE_CRASH_RUN"
	crashEnvSteps   = "DURABLE_CRASH_STEPS"
	crashEnvKillAt  = "DURABLE_CRASH_KILL_AT"
	crashEnvDelay   = "DURABLE_CRASH_STEP_DELAY"
	crashReady      = "CRASH-CHILD READY"
	crashDone       = "CRASH-CHILD DONE"
)

// crashWorkflow runs n steps; step i logs "run/i" and returns i*i, and the
// workflow returns the sum. If killAt is i, step i blocks after logging,
// waiting to be killed. delay stretches each step so that random kills
// land inside the run.
func crashWorkflow(logPath string, killAt int, delay time.Duration) *durable.Workflow[int, int] {
	return durable.Define("crash", func(ctx durable.Context, n int) (int, error) {
		sum := 0
		for i := 1; i <= n; i++ {
			v, err := durable.Step(ctx, fmt.Sprintf("s%02d", i), func(context.Context) (int, error) {
				if err := appendSync(logPath, fmt.Sprintf("%s/%d\n", ctx.RunID(), i)); err != nil {
					return 0, err
				}
				if i == killAt {
					time.Sleep(time.Hour) // the parent kills the process here
				}
				if delay > 0 {
					time.Sleep(delay)
				}
				return i * i, nil
			})
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	})
}

func crashWant(n int) int { return n * (n + 1) * (2*n + 1) / 6 }

// appendSync appends line to the file at path and fsyncs it.
func appendSync(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// TestCrashChild is the child process of the crash tests; run directly it
// skips.
func TestCrashChild(t *testing.T) {
	if os.Getenv(crashEnvChild) != "1" {
		t.Skip("the crash tests run this as a child process")
	}
	steps, err := strconv.Atoi(os.Getenv(crashEnvSteps))
	if err != nil {
		t.Fatalf("%s: %v", crashEnvSteps, err)
	}
	killAt, _ := strconv.Atoi(os.Getenv(crashEnvKillAt))
	delay, _ := time.ParseDuration(os.Getenv(crashEnvDelay))
	wf := crashWorkflow(os.Getenv(crashEnvLog), killAt, delay)
	e, err := durable.Open(os.Getenv(crashEnvJournal), quiet(config(wf)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer e.Close()
	fmt.Println(crashReady)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := durable.Run(ctx, e, wf, os.Getenv(crashEnvRun), steps)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	fmt.Printf("%s %d\n", crashDone, out)
}

// crashChild is a running child process.
type crashChild struct {
	cmd    *exec.Cmd
	ready  chan struct{} // closed when the child printed crashReady
	done   chan error    // the result of Wait, once stdout is drained
	stdout bytes.Buffer  // read only after done
	stderr bytes.Buffer
	result string // the number after crashDone, if printed
}

type crashSetup struct {
	journal, log, run string
	steps             int
}

func (s *crashSetup) start(t *testing.T, killAt int, delay time.Duration) *crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(),
		crashEnvChild+"=1",
		crashEnvJournal+"="+s.journal,
		crashEnvLog+"="+s.log,
		crashEnvRun+"="+s.run,
		crashEnvSteps+"="+strconv.Itoa(s.steps),
		crashEnvKillAt+"="+strconv.Itoa(killAt),
		crashEnvDelay+"="+delay.String(),
	)
	c := &crashChild{cmd: cmd, ready: make(chan struct{}), done: make(chan error, 1)}
	cmd.Stderr = &c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() }) // harmless once it exited
	go func() {
		sc := bufio.NewScanner(out)
		readyClosed := false
		for sc.Scan() {
			line := sc.Text()
			c.stdout.WriteString(line + "\n")
			switch {
			case line == crashReady && !readyClosed:
				readyClosed = true
				close(c.ready)
			case strings.HasPrefix(line, crashDone+" "):
				c.result = strings.TrimPrefix(line, crashDone+" ")
			}
		}
		c.done <- cmd.Wait()
	}()
	return c
}

// wait waits for the child to exit and returns Wait's error.
func (c *crashChild) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(2 * waitLimit):
		c.cmd.Process.Kill()
		t.Fatalf("child did not exit; stderr:\n%s", c.stderr.String())
		return nil
	}
}

// kill kills the child with SIGKILL and reports whether the signal ended
// it; if it had exited on its own, err is what Wait returned.
func (c *crashChild) kill(t *testing.T) (killed bool, err error) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill: %v", err)
	}
	err = c.wait(t)
	var ee *exec.ExitError
	if errors.As(err, &ee) && strings.Contains(ee.Error(), "killed") {
		return true, nil
	}
	return false, err
}

// completed checks that the child finished the workflow with the right
// result.
func (c *crashChild) completed(t *testing.T, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatalf("child failed: %v\nstdout:\n%s\nstderr:\n%s", err, c.stdout.String(), c.stderr.String())
	}
	if c.result != strconv.Itoa(want) {
		t.Fatalf("child printed result %q, want %d\nstdout:\n%s", c.result, want, c.stdout.String())
	}
}

// logLines returns the complete lines of the side-effect log.
func (s *crashSetup) logLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(s.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	return lines[:len(lines)-1] // a last piece without "\n" is not a line
}

// executions counts the executions of each step in lines.
func (s *crashSetup) executions(t *testing.T, lines []string) map[int]int {
	t.Helper()
	n := map[int]int{}
	for _, l := range lines {
		run, step, ok := strings.Cut(l, "/")
		i, err := strconv.Atoi(step)
		if !ok || run != s.run || err != nil || i < 1 || i > s.steps {
			t.Fatalf("bad log line %q", l)
		}
		n[i]++
	}
	return n
}

// verifyJournal opens the journal in this process and checks that the run
// completed with the right result, without executing anything again.
func (s *crashSetup) verifyJournal(t *testing.T) {
	t.Helper()
	before := len(s.logLines(t))
	wf := crashWorkflow(s.log, 0, 0)
	e, err := durable.Open(s.journal, quiet(config(wf)))
	if err != nil {
		t.Fatalf("Open after the crashes: %v", err)
	}
	defer e.Close()
	info := mustGet(t, e, s.run)
	if info.Status != durable.StatusCompleted || info.Err != nil {
		t.Errorf("run is %v (%v), want completed", info.Status, info.Err)
	}
	got, err := durable.Run(testCtx(t), e, wf, s.run, s.steps)
	if err != nil || got != crashWant(s.steps) {
		t.Errorf("Result = %v, %v; want %d", got, err, crashWant(s.steps))
	}
	if after := len(s.logLines(t)); after != before {
		t.Errorf("reading the completed run executed %d steps", after-before)
	}
}

func newCrashSetup(t *testing.T, steps int) *crashSetup {
	dir := t.TempDir()
	return &crashSetup{journal: filepath.Join(dir, "journal.db"), log: filepath.Join(dir, "effects.log"), run: "crash-run", steps: steps}
}

// A kill inside a step whose result is not yet recorded: on restart that
// step runs again, and no other step does.
func TestCrashKillInsideStep(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	t.Parallel()
	const killAt = 12
	s := newCrashSetup(t, 30)

	c := s.start(t, killAt, 0)
	marker := fmt.Sprintf("%s/%d", s.run, killAt)
	waitFor(t, "the child to enter step 12", func() bool {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("child exited before the kill: %v\nstderr:\n%s", err, c.stderr.String())
		default:
		}
		lines := s.logLines(t)
		return len(lines) > 0 && lines[len(lines)-1] == marker
	})
	if killed, err := c.kill(t); !killed {
		t.Fatalf("the child was not killed by SIGKILL: %v", err)
	}

	c = s.start(t, 0, 0)
	c.completed(t, c.wait(t), crashWant(s.steps))

	n := s.executions(t, s.logLines(t))
	for i := 1; i <= s.steps; i++ {
		want := 1
		if i == killAt {
			want = 2
		}
		if n[i] != want {
			t.Errorf("step %d executed %d times, want %d", i, n[i], want)
		}
	}
	s.verifyJournal(t)
}

// Kills at random moments: every step runs at least once, and a step runs
// again only after a kill that landed while it was in progress.
func TestCrashRandomKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes")
	}
	t.Parallel()
	kills := 5
	if *crashKills > 0 {
		kills = *crashKills
	} else if v, err := strconv.Atoi(os.Getenv("DURABLE_CRASHES")); err == nil && v > 0 {
		kills = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("DURABLE_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random kills: seed %d (rerun with DURABLE_CRASH_SEED=%d)", seed, seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	s := newCrashSetup(t, max(60, 12*kills))
	const delay = 3 * time.Millisecond

	// inProgress[i] counts kills that landed while step i was the one in
	// progress: the last step a killed child logged. Steps are sequential,
	// so every earlier step it logged was recorded before the kill.
	inProgress := map[int]int{}
	landed := 0
	for instance := 0; ; instance++ {
		if instance > kills+10 {
			t.Fatalf("no completion after %d child processes", instance)
		}
		before := len(s.logLines(t))
		c := s.start(t, 0, delay)
		if landed < kills {
			select {
			case <-c.ready:
			case err := <-c.done:
				t.Fatalf("child exited before it was ready: %v\nstderr:\n%s", err, c.stderr.String())
			case <-time.After(2 * waitLimit):
				t.Fatal("child not ready")
			}
			wait := time.Duration(1+rng.IntN(100)) * time.Millisecond
			select {
			case <-time.After(wait):
				killed, err := c.kill(t)
				if killed {
					landed++
					lines := s.logLines(t)[before:]
					last := 0
					if len(lines) > 0 {
						_, step, _ := strings.Cut(lines[len(lines)-1], "/")
						last, _ = strconv.Atoi(step)
						inProgress[last]++
					}
					t.Logf("kill %d after %v: the child logged %d steps, the last %d", landed, wait, len(lines), last)
					continue
				}
				// It exited on its own just before the kill.
				c.completed(t, err, crashWant(s.steps))
			case err := <-c.done:
				c.completed(t, err, crashWant(s.steps))
			}
		} else {
			c.completed(t, c.wait(t), crashWant(s.steps))
		}
		break
	}
	t.Logf("%d kills landed", landed)

	n := s.executions(t, s.logLines(t))
	for i := 1; i <= s.steps; i++ {
		if n[i] < 1 {
			t.Errorf("step %d never executed", i)
		}
		if limit := 1 + inProgress[i]; n[i] > limit {
			t.Errorf("step %d executed %d times; at most %d allowed (%d kills landed while it was in progress): a recorded step ran again", i, n[i], limit, inProgress[i])
		}
	}
	s.verifyJournal(t)
}
