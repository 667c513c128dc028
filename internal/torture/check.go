package torture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/boltcheck"
	"github.com/durable-go/durable/journal"
)

// checker checks the outcome of a torture run.
type checker struct {
	o       Options
	rep     *Report
	path    string
	logPath string
	killed  map[int]bool // incarnations that a kill ended
	expects []Expect
	byID    map[string]*Expect
}

func (c *checker) problem(format string, args ...any) {
	c.rep.Problems = append(c.rep.Problems, fmt.Sprintf(format, args...))
}

func (c *checker) run(ctx context.Context) error {
	for g := range c.rep.Rounds {
		c.expects = append(c.expects, Expected(MakeRound(c.o.Seed, g, c.o.Runs))...)
	}
	c.byID = map[string]*Expect{}
	for i := range c.expects {
		c.byID[c.expects[i].ID] = &c.expects[i]
	}
	if err := c.checkLog(); err != nil {
		return err
	}
	if err := c.checkEngine(ctx); err != nil {
		return err
	}
	if err := c.checkJournal(ctx); err != nil {
		return err
	}
	c.bboltCheck(ctx)
	return nil
}

// stepLog is what the effect log says of one step.
type stepLog struct {
	begins map[int]map[int]int // incarnation → attempt → executions
	incs   []int               // incarnations with executions, in order
	ok     map[int]bool        // incarnations in which the workflow saw the outcome
	total  int
}

// checkLog checks the effect log against the plans and the kills.
func (c *checker) checkLog() error {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return err
	}
	steps := map[string]*stepLog{}
	get := func(key string) *stepLog {
		s := steps[key]
		if s == nil {
			s = &stepLog{begins: map[int]map[int]int{}, ok: map[int]bool{}}
			steps[key] = s
		}
		return s
	}
	sends := map[string]map[string]int{} // body → verb → count
	inc := 0
	for _, line := range strings.Split(string(b), "\n") {
		verb, arg, _ := strings.Cut(line, " ")
		switch verb {
		case "":
		case "inc":
			f := strings.Fields(arg)
			if len(f) == 0 {
				c.problem("effect log: bad line %q", line)
				continue
			}
			inc, _ = strconv.Atoi(f[0])
		case "begin":
			i := strings.LastIndexByte(arg, '/')
			a, err := strconv.Atoi(arg[i+1:])
			if i < 0 || err != nil {
				c.problem("effect log: bad line %q", line)
				continue
			}
			s := get(arg[:i])
			if s.begins[inc] == nil {
				s.begins[inc] = map[int]int{}
				s.incs = append(s.incs, inc)
			}
			s.begins[inc][a]++
			s.total++
		case "ok":
			get(arg).ok[inc] = true
		case "end", "cancel":
		default:
			if strings.HasPrefix(verb, "send-") {
				if sends[arg] == nil {
					sends[arg] = map[string]int{}
				}
				sends[arg][verb]++
				continue
			}
			c.problem("effect log: bad line %q", line)
		}
	}

	expected := map[string]StepExpect{}
	for _, x := range c.expects {
		for _, s := range x.Steps {
			expected[s.Key()] = s
			c.rep.Steps++
			if steps[s.Key()] == nil && !x.Optional {
				c.problem("step %s never executed", s.Key())
			}
		}
	}
	keys := make([]string, 0, len(steps))
	for k := range steps {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		s := steps[key]
		want, ok := expected[key]
		if !ok {
			if s.total > 0 {
				c.problem("step %s executed %d times but is in no plan", key, s.total)
			}
			continue
		}
		c.rep.Executions += s.total
		attempts := map[int]bool{}
		kills := 0   // kills that found the step in progress
		okAt := 0    // first incarnation in which the workflow saw its outcome
		maxPrev := 0 // highest attempt begun in earlier incarnations
		for _, i := range s.incs {
			if okAt != 0 && i > okAt {
				c.problem("step %s executed again in process %d after its outcome was seen in process %d", key, i, okAt)
			}
			lo := 0
			for a, n := range s.begins[i] {
				attempts[a] = true
				if n > 1 {
					c.problem("step %s attempt %d executed %d times in process %d", key, a, n, i)
				}
				if lo == 0 || a < lo {
					lo = a
				}
			}
			if lo < maxPrev {
				c.problem("step %s attempt %d executed in process %d after attempt %d began in an earlier one (a recorded attempt ran again)", key, lo, i, maxPrev)
			}
			for a := range s.begins[i] {
				maxPrev = max(maxPrev, a)
			}
			if c.killed[i] && !s.ok[i] {
				kills++
			}
			if s.ok[i] && okAt == 0 {
				okAt = i
			}
		}
		for a := 1; a <= want.Attempts; a++ {
			if !attempts[a] {
				c.problem("step %s: attempt %d never executed (want %d attempts)", key, a, want.Attempts)
			}
		}
		for a := range attempts {
			if a < 1 || a > want.Attempts {
				c.problem("step %s: attempt %d executed (want %d attempts)", key, a, want.Attempts)
			}
		}
		re := s.total - len(attempts)
		c.rep.Reexecutions += re
		if re > kills {
			c.problem("step %s: %d re-executions, but only %d kills found it in progress (executions by process: %v)", key, re, kills, s.begins)
		}
	}

	for _, x := range c.expects {
		for _, m := range x.Messages {
			v := sends[m.Body]
			if n := v["send-end"] + v["send-found"]; n != 1 {
				c.problem("message %s sent %d times (log: %v)", m.Body, n, v)
			}
			delete(sends, m.Body)
		}
	}
	for bodyText, v := range sends {
		c.problem("message %s sent but in no plan (log: %v)", bodyText, v)
	}
	return nil
}

// countLog counts appends: in the checker nothing may execute.
type countLog struct{ n atomic.Int64 }

func (l *countLog) Append(string, ...any) error { l.n.Add(1); return nil }

// checkEngine opens the journal with the engine and checks every run's
// status and result.
func (c *checker) checkEngine(ctx context.Context) error {
	var cl countLog
	w := newWorkload(&cl)
	e, err := durable.Open(c.path, &durable.Config{Workflows: []durable.Definition{w.wf}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("open the journal: %w", err)
	}
	defer e.Close()
	infos := map[string]durable.RunInfo{}
	for after := ""; ; {
		page, err := e.List(ctx, durable.ListOptions{After: after, Limit: 1000})
		if err != nil {
			return err
		}
		for _, r := range page.Runs {
			infos[r.ID] = r
		}
		if after = page.NextAfter; after == "" {
			break
		}
	}
	c.rep.Runs = map[durable.Status]int{}
	for id, info := range infos {
		if c.byID[id] == nil {
			c.problem("run %s (%v) is in the journal but in no plan", id, info.Status)
		}
		c.rep.Runs[info.Status]++
	}
	for _, x := range c.expects {
		info, ok := infos[x.ID]
		if !ok {
			if !x.Optional {
				c.problem("run %s is missing", x.ID)
			}
			continue
		}
		if info.Parent != x.Parent {
			c.problem("run %s: parent %q, want %q", x.ID, info.Parent, x.Parent)
		}
		if info.Status != x.Status {
			c.problem("run %s: %v (%v), want %v", x.ID, info.Status, info.Err, x.Status)
			continue
		}
		switch x.Status {
		case durable.StatusCompleted:
			h, err := durable.Start(ctx, e, w.wf, x.ID, Plan{})
			if err != nil {
				return err
			}
			got, err := h.Result(ctx)
			if err != nil || got != x.Result {
				c.problem("run %s: result %q, %v; want %q", x.ID, got, err, x.Result)
			}
		case durable.StatusFailed:
			if info.Err == nil || !strings.Contains(info.Err.Error(), x.ErrHas) {
				c.problem("run %s failed with %v, want an error containing %q", x.ID, info.Err, x.ErrHas)
			}
		case durable.StatusCanceled:
			want := durable.ErrCanceled
			if x.Deadline {
				want = durable.ErrDeadlineExceeded
			}
			if !errors.Is(info.Err, want) {
				c.problem("run %s canceled with %v, want an error matching %v", x.ID, info.Err, want)
			}
		}
	}
	if err := e.Close(); err != nil {
		c.problem("Close of the checking engine: %v", err)
	}
	if n := cl.n.Load(); n > 0 {
		c.problem("the checking engine executed steps (%d effect lines): some run was not finished", n)
	}
	return nil
}

// checkJournal reads the journal directly: Verify, then every run's
// records.
func (c *checker) checkJournal(ctx context.Context) error {
	s, err := journal.OpenBolt(c.path, &journal.BoltOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := s.Verify(ctx)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		c.problem("Verify: %v", p)
	}
	for _, x := range c.expects {
		if _, err := s.GetRun(ctx, x.ID); errors.Is(err, journal.ErrNotFound) {
			continue // reported by checkEngine
		}
		recs, err := s.Records(ctx, x.ID)
		if err != nil {
			c.problem("run %s: records: %v", x.ID, err)
			continue
		}
		evs, err := durable.History(ctx, s, x.ID)
		if err != nil {
			c.problem("run %s: history: %v", x.ID, err)
			continue
		}
		c.wellFormed(&x, recs, evs)
		for _, m := range x.Messages {
			c.rep.Messages++
			if m.Epoch != x.Epochs-1 {
				continue // in the journal of an ended epoch; the result shows it
			}
			n := 0
			for _, r := range recs {
				n += bytes.Count(r.Data, []byte(m.Body))
			}
			if n != 1 {
				c.problem("run %s: message %s is in its journal %d times, want once", x.ID, m.Body, n)
			}
		}
		for _, m := range x.Messages {
			msgs, err := s.Messages(ctx, x.ID, m.Channel, 0)
			if err != nil || len(msgs) > 0 {
				c.problem("run %s: %d messages left in its inbox on %s (%v)", x.ID, len(msgs), m.Channel, err)
			}
		}
	}
	return nil
}

// wellFormed checks a run's records: positions from 0 with no gap, each
// position's records numbered from 0 with one kind and name, at most one
// outcome and nothing after it, and each step's failed attempts as its
// plan gives.
func (c *checker) wellFormed(x *Expect, recs []journal.Record, evs []durable.Event) {
	if len(evs) != len(recs) {
		c.problem("run %s: %d records but %d events", x.ID, len(recs), len(evs))
		return
	}
	attempts := map[string]int{} // of the steps in the journal: the last epoch's
	for _, s := range x.Steps {
		if s.Epoch == x.Epochs-1 {
			attempts[s.Name] = s.Attempts
		}
	}
	pos := -1
	for i := 0; i < len(recs); {
		r := recs[i]
		if int(r.Pos) != pos+1 {
			c.problem("run %s: records at position %d after %d", x.ID, r.Pos, pos)
		}
		pos = int(r.Pos)
		j := i
		outcome, failed := -1, 0
		for ; j < len(recs) && recs[j].Pos == r.Pos; j++ {
			if int(recs[j].Seq) != j-i {
				c.problem("run %s: record %d.%d where %d.%d belongs", x.ID, r.Pos, recs[j].Seq, r.Pos, j-i)
			}
			if recs[j].Kind != r.Kind || recs[j].Name != r.Name {
				c.problem("run %s: position %d mixes records of %s %q and %s %q", x.ID, r.Pos, evs[i].Kind, r.Name, evs[j].Kind, recs[j].Name)
			}
			ev := evs[j]
			switch {
			case ev.What == "completed" || ev.What == "failed" || ev.What == "canceled" || ev.Kind == "now" || ev.Kind == "timer":
				if outcome >= 0 {
					c.problem("run %s: position %d has two outcomes (seq %d and %d)", x.ID, r.Pos, outcome, j-i)
				}
				outcome = j - i
			case outcome >= 0:
				c.problem("run %s: position %d has %q after its outcome", x.ID, r.Pos, ev.What)
			case strings.HasPrefix(ev.What, "attempt "):
				failed++
			case ev.What == "waiting until" && j > i:
				c.problem("run %s: position %d sets its timer again (seq %d): a timer was restarted", x.ID, r.Pos, j-i)
			}
		}
		if outcome < 0 {
			c.problem("run %s: position %d (%s %q) has no outcome", x.ID, r.Pos, evs[i].Kind, r.Name)
		}
		if evs[i].Kind == "step" {
			if want, ok := attempts[r.Name]; ok && failed != want-1 {
				c.problem("run %s: step %q has %d failed attempts recorded, want %d", x.ID, r.Name, failed, want-1)
			}
			delete(attempts, r.Name)
		}
		i = j
	}
	for name := range attempts {
		c.problem("run %s: step %q is not in its journal", x.ID, name)
	}
}

// bboltCheck runs bbolt's consistency check in a child process (see
// internal/boltcheck).
func (c *checker) bboltCheck(ctx context.Context) {
	res := boltcheck.Run(ctx, c.o.Launch(RoleBboltCheck, map[string]string{envPath: c.path}), 5*time.Minute)
	switch {
	case res.Err != nil:
		c.problem("bbolt check: %v", res.Err)
	case res.Crashed:
		c.problem("bbolt check crashed: %s", res.Detail)
	}
	for _, p := range res.Problems {
		c.problem("bbolt check: %s", p)
	}
	if more := res.Count - len(res.Problems); more > 0 {
		c.problem("bbolt check: %d more problems", more)
	}
}

// BboltCheck is the bbolt check role: boltcheck.Child on the file at
// path, reported on w. It returns the exit status.
func BboltCheck(path string, w io.Writer) int {
	return boltcheck.Child(path, 10*time.Second, w)
}
