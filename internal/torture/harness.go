package torture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/childproc"
)

// Roles a [Launcher] is asked to start.
const (
	RoleChild      = "torture"            // run Child
	RoleBboltCheck = "torture-bboltcheck" // run BboltCheck on env PATH
)

// Launcher returns the command that runs this program again in role, with
// env (which the child reads with the getenv given to Child). It does not
// start it. A test re-executes its binary (crashtest.Command); a program
// re-executes itself.
type Launcher func(role string, env map[string]string) *exec.Cmd

// Options configures [Run].
type Options struct {
	// Dir holds the journal, the effect log and the children's stderr.
	Dir string
	// Seed determines the workload and the kill times. Defaults to the
	// clock.
	Seed uint64
	// Kills is how many SIGKILLs must land. Defaults to 30.
	Kills int
	// Runs is the number of top-level runs per round. Defaults to 16.
	Runs int
	// MaxKillDelay bounds how long after a child is ready it is killed.
	// Defaults to 250ms.
	MaxKillDelay time.Duration
	// Launch starts children. Required.
	Launch Launcher
	// Progress receives a line per incarnation. Defaults to none.
	Progress io.Writer
}

// Report is what [Run] did and found.
type Report struct {
	Seed         uint64
	Kills        int // SIGKILLs that landed
	Incarnations int // child processes
	Rounds       int // rounds completed
	// Runs counts the finished runs, children included, by status.
	Runs         map[durable.Status]int
	Steps        int // distinct steps
	Executions   int // step attempts executed, as the effect log shows
	Reexecutions int // executions of an attempt beyond its first
	Messages     int // messages sent and received
	Duration     time.Duration
	JournalBytes int64
	// Problems is what the checks found wrong; empty if all is well.
	Problems []string
}

// String is a few lines for people.
func (r *Report) String() string {
	var b strings.Builder
	total := 0
	var sts []string
	for st := durable.StatusRunning; st <= durable.StatusCanceled; st++ {
		if n := r.Runs[st]; n > 0 {
			total += n
			sts = append(sts, fmt.Sprintf("%d %v", n, st))
		}
	}
	fmt.Fprintf(&b, "seed %d: %d kills survived in %d processes, %v\n", r.Seed, r.Kills, r.Incarnations, r.Duration.Round(time.Millisecond))
	fmt.Fprintf(&b, "%d rounds, %d runs finished (%s), %d messages received once each\n", r.Rounds, total, strings.Join(sts, ", "), r.Messages)
	fmt.Fprintf(&b, "%d steps, %d executions, %d re-executions after kills; journal %d KiB\n", r.Steps, r.Executions, r.Reexecutions, r.JournalBytes>>10)
	if len(r.Problems) == 0 {
		b.WriteString("no problems")
	} else {
		fmt.Fprintf(&b, "%d problems:", len(r.Problems))
		for _, p := range r.Problems {
			b.WriteString("\n  " + p)
		}
	}
	return b.String()
}

// Files in Options.Dir.
const (
	journalFile = "journal.db"
	logFile     = "effects.log"
	stderrFile  = "children.stderr"
)

// Run is the parent: it runs children that do the workload, kills them at
// random moments until Options.Kills kills landed, lets the last one
// finish its round, and checks the outcome. It returns the report and an
// error if the harness failed or the checks found problems (listed in the
// report). The error names the seed.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Launch == nil || o.Dir == "" {
		return nil, errors.New("torture: Options.Launch and Options.Dir are required")
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Kills <= 0 {
		o.Kills = 30
	}
	if o.Runs <= 0 {
		o.Runs = 16
	}
	if o.MaxKillDelay <= 0 {
		o.MaxKillDelay = 250 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	rep := &Report{Seed: o.Seed}
	fail := func(format string, args ...any) (*Report, error) {
		return rep, fmt.Errorf("torture (seed %d): %s", o.Seed, fmt.Sprintf(format, args...))
	}
	start := time.Now()
	path := filepath.Join(o.Dir, journalFile)
	logPath := filepath.Join(o.Dir, logFile)
	stderr, err := os.OpenFile(filepath.Join(o.Dir, stderrFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fail("%v", err)
	}
	defer stderr.Close()

	fmt.Fprintf(o.Progress, "torture: seed %d, %d kills, %d runs per round, in %s\n", o.Seed, o.Kills, o.Runs, o.Dir)
	rng := rand.New(rand.NewPCG(o.Seed, 0x6b111))
	killed := map[int]bool{}
	round, inc := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return fail("%v", err)
		}
		inc++
		fmt.Fprintf(stderr, "=== incarnation %d (round %d)\n", inc, round)
		p, err := startProc(noExitSleep(o.Launch(RoleChild, map[string]string{
			envJournal: path, envLog: logPath, envSeed: strconv.FormatUint(o.Seed, 10),
			envRuns: strconv.Itoa(o.Runs), envRound: strconv.Itoa(round), envInc: strconv.Itoa(inc),
		})), stderr)
		if err != nil {
			return fail("start child: %v", err)
		}
		landed, exiting := false, false
		if rep.Kills < o.Kills {
			var delay time.Duration
			from := "start"
			if rng.IntN(4) == 0 { // during startup and recovery
				delay = time.Duration(1+rng.IntN(150)) * time.Millisecond
			} else {
				from = "ready"
				delay = time.Duration(rng.Int64N(int64(o.MaxKillDelay)))
				select {
				case <-p.ready:
				case <-p.Done():
				case <-time.After(time.Minute):
				case <-ctx.Done():
				}
			}
			select {
			case <-time.After(delay):
				landed = p.Kill()
			case <-p.Done():
			case <-ctx.Done():
				p.Kill()
				return fail("%v", ctx.Err())
			}
			if landed && strings.HasPrefix(p.failure(), lineFail) {
				return fail("process %d (round %d) failed (and was killed while it stopped):\n%s\nstderr (last lines):\n%s", inc, round, p.failure(), tail(filepath.Join(o.Dir, stderrFile), 40))
			}
			if landed && p.doneLine() {
				// It had finished its round and was exiting: the kill
				// found nothing to interrupt.
				landed, exiting = false, true
			}
			if landed {
				killed[inc] = true
				rep.Kills++
				fmt.Fprintf(o.Progress, "kill %d/%d: process %d, round %d, %v after %s\n", rep.Kills, o.Kills, inc, round, delay.Round(time.Millisecond), from)
				continue
			}
		}
		select {
		case <-p.Done():
		case <-time.After(roundTimeout + 30*time.Second):
			p.Kill()
			return fail("process %d (round %d) neither finished nor failed; stdout:\n%s", inc, round, p.Output())
		case <-ctx.Done():
			p.Kill()
			return fail("%v", ctx.Err())
		}
		if !p.finished() && !exiting {
			return fail("process %d (round %d) failed: %v\n%s\nstderr (last lines):\n%s", inc, round, p.Err(), p.failure(), tail(filepath.Join(o.Dir, stderrFile), 40))
		}
		round++
		fmt.Fprintf(o.Progress, "round %d done by process %d (%d kills so far)\n", round, inc, rep.Kills)
		if rep.Kills >= o.Kills {
			break
		}
	}
	rep.Incarnations, rep.Rounds = inc, round
	rep.Duration = time.Since(start)
	if fi, err := os.Stat(path); err == nil {
		rep.JournalBytes = fi.Size()
	}

	c := &checker{o: o, rep: rep, path: path, logPath: logPath, killed: killed}
	if err := c.run(ctx); err != nil {
		return fail("check: %v", err)
	}
	rep.Duration = time.Since(start)
	if len(rep.Problems) > 0 {
		sort.Strings(rep.Problems)
		shown := rep.Problems
		if len(shown) > 20 {
			shown = append(shown[:20:20], fmt.Sprintf("... and %d more", len(rep.Problems)-20))
		}
		return fail("%d problems:\n  %s", len(rep.Problems), strings.Join(shown, "\n  "))
	}
	return rep, nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// proc is a running child.
type proc struct {
	*childproc.Proc
	ready chan struct{} // closed when the child printed lineReady
}

func startProc(cmd *exec.Cmd, stderr io.Writer) (*proc, error) {
	p := &proc{ready: make(chan struct{})}
	isReady := false
	cp, err := childproc.Start(cmd, stderr, func(line string) {
		if line == lineReady && !isReady {
			isReady = true
			close(p.ready)
		}
	})
	if err != nil {
		return nil, err
	}
	p.Proc = cp
	return p, nil
}

// noExitSleep turns off the race detector's pause before exit (a second
// by default) in a race-enabled child: the harness would take the pause
// for work and kill the child in it.
func noExitSleep(cmd *exec.Cmd) *exec.Cmd {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	opts := "atexit_sleep_ms=0"
	for i, kv := range cmd.Env {
		if v, ok := strings.CutPrefix(kv, "GORACE="); ok {
			cmd.Env[i] = "GORACE=" + strings.TrimSpace(v+" "+opts)
			return cmd
		}
	}
	cmd.Env = append(cmd.Env, "GORACE="+opts)
	return cmd
}

// finished reports whether the child exited 0 after finishing its round.
func (p *proc) finished() bool {
	if p.Err() != nil {
		return false
	}
	return p.doneLine()
}

// doneLine reports whether the child printed that it finished its round
// (it may have been killed while exiting).
func (p *proc) doneLine() bool {
	for _, l := range p.Lines() {
		if l == lineDone {
			return true
		}
	}
	return false
}

// failure returns the child's failure line, or its whole output.
func (p *proc) failure() string {
	for _, l := range p.Lines() {
		if strings.HasPrefix(l, lineFail) {
			return l
		}
	}
	return p.Output()
}
