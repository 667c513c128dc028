package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/durable-go/durable/internal/boltcheck"
	"github.com/durable-go/durable/internal/runtext"
	"github.com/durable-go/durable/journal"
)

// bboltCheckCommand is the hidden command that check runs in a child
// process: bbolt's checker runs in a goroutine of its own, where a memory
// fault on a damaged file is not contained and kills the process.
const bboltCheckCommand = "__bboltcheck"

// maxShownProblems bounds the checksum and index problems shown.
const maxShownProblems = 20

// bboltCheckTimeout bounds the child's check.
var bboltCheckTimeout = 10 * time.Minute

// check verifies the file offline and says what each problem means.
func (c *cli) check(args []string) int {
	pos, code, ok := c.parse(c.flags("check"), args, 1)
	if !ok {
		return code
	}
	path := pos[0]
	s := c.openReadOnly(path)
	if s == nil {
		return exitFailure
	}
	defer s.Close()

	// While s holds the file (a shared lock), no writer can change it
	// between the two checks.
	cmd, err := c.self(bboltCheckCommand, path)
	if err != nil {
		return c.errorf("cannot run the bbolt check: %v", err)
	}
	bb := boltcheck.Run(c.ctx, cmd, bboltCheckTimeout)
	rep, err := s.Verify(c.ctx)
	if err != nil {
		return c.errorf("%s: verify: %v", path, err)
	}

	w := c.stdout
	fmt.Fprintf(w, "journal %s: %s, %s (%s), %s\n", path, runSummary(&rep),
		plural(rep.Records, "record", "records"), plural(rep.Epochs, "epoch", "epochs"),
		plural(rep.Messages, "message", "messages"))

	switch {
	case bb.Crashed:
		fmt.Fprintf(w, "bbolt check crashed: the file is damaged (%s)\n", bb.Detail)
	case bb.Err != nil:
		fmt.Fprintf(w, "bbolt check: could not run: %v\n", bb.Err)
	case bb.Count == 0:
		fmt.Fprintf(w, "bbolt check: ok\n")
	default:
		fmt.Fprintf(w, "bbolt check: %s in the file's structure:\n", plural(bb.Count, "problem", "problems"))
		for _, p := range bb.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		if more := bb.Count - len(bb.Problems); more > 0 {
			fmt.Fprintf(w, "  ... and %s more\n", runtext.Commas(more))
		}
	}

	if rep.OK() {
		fmt.Fprintf(w, "checksums and indexes: ok\n")
	} else {
		fmt.Fprintf(w, "checksums and indexes: %s:\n", plural(len(rep.Problems), "problem", "problems"))
		for i, p := range rep.Problems {
			if i == maxShownProblems {
				fmt.Fprintf(w, "  ... and %s more\n", runtext.Commas(len(rep.Problems)-i))
				break
			}
			fmt.Fprintf(w, "  %s — %s\n", p, c.consequence(s, p))
		}
	}

	sound := bb.Err == nil && !bb.Crashed && bb.Count == 0
	switch {
	case sound && rep.OK():
		fmt.Fprintf(w, "the journal is sound.\n")
		return exitOK
	case sound && onlyRunProblems(rep.Problems):
		fmt.Fprintf(w, "%s affected; other runs are fine.\n", plural(affectedRuns(rep.Problems), "run is", "runs are"))
	default:
		fmt.Fprintf(w, "the file is damaged: work on a copy, and restore it from a backup if you have one.\n")
	}
	return exitFailure
}

// runSummary is "1,234 runs (12 running, 3 parked, ...)".
func runSummary(rep *journal.Report) string {
	var parts []string
	readable := 0
	for st := journal.StatusRunning; st <= journal.StatusCanceled; st++ {
		if n := rep.ByStatus[st]; n > 0 {
			parts = append(parts, runtext.Commas(n)+" "+st.String())
			readable += n
		}
	}
	if n := rep.Runs - readable; n > 0 {
		parts = append(parts, runtext.Commas(n)+" unreadable")
	}
	s := plural(rep.Runs, "run", "runs")
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func onlyRunProblems(ps []journal.Problem) bool {
	for _, p := range ps {
		if p.RunID == "" || p.What == "file" {
			return false
		}
	}
	return true
}

func affectedRuns(ps []journal.Problem) int {
	ids := map[string]bool{}
	for _, p := range ps {
		ids[p.RunID] = true
	}
	return len(ids)
}

// consequence says what a problem means for the application.
func (c *cli) consequence(s *journal.Bolt, p journal.Problem) string {
	var run *journal.Run
	if p.RunID != "" {
		if r, err := s.GetRun(c.ctx, p.RunID); err == nil {
			run = &r
		}
	}
	finished := run != nil && run.Status.Terminal()
	switch {
	case p.What == "run" && (strings.Contains(p.Detail, "lists it as running") || strings.Contains(p.Detail, "lists it as parked")):
		return "the run cannot be read, and it is unfinished: the engine cannot resume it, and durable.Open fails while it lists unfinished runs"
	case p.What == "run":
		return "the run cannot be read: Get and show fail for it, and listings leave it out"
	case strings.HasPrefix(p.What, "record ") && strings.Contains(p.What, "ended epoch"):
		return "history of an earlier epoch, kept for inspection only: the run is not affected"
	case strings.HasPrefix(p.What, "record "):
		if finished {
			return "the run has finished; only its timeline (durable show) is affected"
		}
		return "this run will be parked when the engine reaches it"
	case strings.HasPrefix(p.What, "message"):
		if finished {
			return "the run has finished; the message was never received"
		}
		return "this run will be parked when it receives on that channel"
	case p.What == "status index":
		return "the engine finds unfinished runs through this index: it may not resume the run, or may fail to list runs"
	case p.What == "wake index":
		return "the run's timer may fire late, early or not at all"
	case p.What == "expiry index":
		return "retention may not delete some finished runs"
	case p.What == "records" || p.What == "inbox":
		if run == nil {
			return "left-over data of a missing run: the engine does not read it"
		}
		return "part of the run's data cannot be read: the run will be parked when the engine reaches it"
	case p.What == "file":
		return "part of the file cannot be read: the data there is lost to the engine"
	}
	return "see the detail"
}

// bboltCheckChild is the hidden command: bbolt's consistency check of
// FILE, reported on stdout (see internal/boltcheck).
func (c *cli) bboltCheckChild(args []string) int {
	pos, code, ok := c.parse(c.flags(bboltCheckCommand), args, 1)
	if !ok {
		return code
	}
	if boltcheck.Child(pos[0], lockTimeout, c.stdout) != 0 {
		return exitFailure
	}
	return exitOK
}
