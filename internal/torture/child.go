package torture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/crashtest"
	"github.com/durable-go/durable/journal"
)

// Lines the child prints on stdout.
const (
	lineReady = "TORTURE READY"
	lineDone  = "TORTURE DONE"
	lineFail  = "TORTURE FAIL"
)

// Environment of the child role (values of the env map a [Launcher] gets).
const (
	envJournal = "JOURNAL"
	envLog     = "LOG"
	envSeed    = "SEED"
	envRuns    = "RUNS"
	envRound   = "ROUND"
	envInc     = "INC"
	envPath    = "PATH" // the bbolt check's file
)

// roundTimeout bounds one incarnation that is not killed: a round takes a
// few seconds at most.
const roundTimeout = 90 * time.Second

// Child is the child role: one incarnation of the workload. It opens the
// journal, starts (or attaches to) every run of the current round, sends
// the round's messages that are not sent yet, cancels the runs the round
// cancels, and returns when every run has finished. getenv reads the
// environment the parent passed; progress lines go to stdout.
func Child(getenv func(string) string, stdout io.Writer) error {
	err := child(getenv, stdout)
	if err != nil {
		fmt.Fprintf(stdout, "%s %s\n", lineFail, strings.ReplaceAll(err.Error(), "\n", " | "))
	}
	return err
}

func child(getenv func(string) string, stdout io.Writer) error {
	path, logPath := getenv(envJournal), getenv(envLog)
	seed, err := strconv.ParseUint(getenv(envSeed), 10, 64)
	if err != nil {
		return fmt.Errorf("torture child: %s: %v", envSeed, err)
	}
	runs, err1 := strconv.Atoi(getenv(envRuns))
	n, err2 := strconv.Atoi(getenv(envRound))
	inc, err3 := strconv.Atoi(getenv(envInc))
	if err := errors.Join(err1, err2, err3); err != nil || path == "" || logPath == "" {
		return fmt.Errorf("torture child: bad environment: %v", err)
	}
	round := MakeRound(seed, n, runs)

	if err := fixTornTail(logPath); err != nil {
		return err
	}
	l, err := crashtest.OpenLog(logPath)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := l.Append("inc %d round %d", inc, n); err != nil {
		return err
	}
	sent, err := resolveSends(path, logPath, l, round)
	if err != nil {
		return err
	}

	w := newWorkload(l)
	e, err := durable.Open(path, &durable.Config{
		Workflows:       []durable.Definition{w.wf},
		MaxCachedRuns:   8, // evict waiting runs: they replay when woken
		RecoveryWorkers: 2,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return fmt.Errorf("torture child: %w", err)
	}
	defer e.Close()
	fmt.Fprintln(stdout, lineReady)

	ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
	defer cancel()
	rng := rand.New(rand.NewPCG(seed, uint64(inc)<<32|0xc1d))
	order := rng.Perm(len(round.Runs))
	handles := make([]*durable.Handle[string], len(round.Runs))
	for _, i := range order {
		spec := round.Runs[i]
		var opts []durable.StartOption
		if spec.Deadline > 0 {
			opts = append(opts, durable.WithRunTimeout(spec.Deadline))
		}
		h, err := durable.Start(ctx, e, w.wf, spec.ID, spec.Plan, opts...)
		if err != nil {
			return fmt.Errorf("torture child: start %s: %w", spec.ID, err)
		}
		handles[i] = h
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		if err := sendAll(ctx, e, l, round, sent, rand.New(rand.NewPCG(seed, uint64(inc)<<32|0x5e4d))); err != nil {
			errs <- err
			cancel()
		}
	})
	for _, spec := range round.Runs {
		if !spec.Cancel {
			continue
		}
		delay := time.Duration(rng.IntN(250)) * time.Millisecond
		wg.Go(func() {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			if err := l.Append("cancel %s", spec.ID); err != nil {
				errs <- err
				cancel()
				return
			}
			if err := e.Cancel(ctx, spec.ID); err != nil && !errors.Is(err, durable.ErrFinished) && ctx.Err() == nil {
				errs <- fmt.Errorf("torture child: cancel %s: %w", spec.ID, err)
				cancel()
			}
		})
	}

	var failed error
	for i, h := range handles {
		_, err := h.Result(ctx)
		if err == nil {
			continue
		}
		var pe *durable.ParkedError
		switch {
		case errors.As(err, &pe):
			failed = fmt.Errorf("torture child: run %s parked: %w", round.Runs[i].ID, err)
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			failed = fmt.Errorf("torture child: round %d not finished after %v: %s", n, roundTimeout, unfinished(e, round))
		case ctx.Err() != nil:
			failed = fmt.Errorf("torture child: stopped; unfinished runs: %s", unfinished(e, round))
		default:
			if info, gerr := e.Get(ctx, round.Runs[i].ID); gerr != nil || !info.Status.Terminal() {
				failed = fmt.Errorf("torture child: result of %s: %w (run: %v, %v)", round.Runs[i].ID, err, info.Status, gerr)
			}
		}
		if failed != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		failed = errors.Join(failed, err)
	}
	if failed != nil {
		return failed
	}
	if err := e.Close(); err != nil {
		return fmt.Errorf("torture child: Close: %w", err)
	}
	fmt.Fprintln(stdout, lineDone)
	return nil
}

// unfinished describes the runs of the round (and their children) that are
// not finished.
func unfinished(e *durable.Engine, r Round) string {
	var out []string
	for _, x := range Expected(r) {
		info, err := e.Get(context.Background(), x.ID)
		if err != nil {
			if !x.Optional {
				out = append(out, fmt.Sprintf("%s: %v", x.ID, err))
			}
			continue
		}
		if !info.Status.Terminal() {
			out = append(out, fmt.Sprintf("%s: %v (wake %v, cancel %v, err %v)", x.ID, info.Status, info.WakeAt, info.CancelRequested, info.Err))
		}
	}
	return strings.Join(out, "; ")
}

// fixTornTail ends the log with a newline if a killed writer left half a
// line (a write is not torn by SIGKILL on Linux, but a disk can be).
func fixTornTail(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if len(b) == 0 || b[len(b)-1] == '\n' {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Send states, from the effect log. A send is logged "send-begin B" before
// durable.Send and "send-end B" after; a kill in between leaves it
// pending, and the next incarnation looks in the journal (before it opens
// the engine: nobody else has the file then) for the message, in the inbox
// or received, and logs "send-found B" or "send-lost B".
const (
	sendNone = iota
	sendPending
	sendDone
)

// sendStates reads the send lines of the log.
func sendStates(logPath string) (map[string]int, error) {
	b, err := os.ReadFile(logPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	st := map[string]int{}
	for line := range strings.SplitSeq(string(b), "\n") {
		verb, arg, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(verb, "send-") {
			continue
		}
		switch verb {
		case "send-begin":
			st[arg] = sendPending
		case "send-end", "send-found":
			st[arg] = sendDone
		case "send-lost":
			st[arg] = sendNone
		}
	}
	return st, nil
}

// resolveSends returns the messages of the round that were sent, after
// settling the one a kill may have left pending.
func resolveSends(path, logPath string, l *crashtest.Log, r Round) (map[string]bool, error) {
	st, err := sendStates(logPath)
	if err != nil {
		return nil, err
	}
	sent := map[string]bool{}
	var pending []Message
	for _, m := range r.Messages {
		switch st[m.Body] {
		case sendDone:
			sent[m.Body] = true
		case sendPending:
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 {
		return sent, nil
	}
	s, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true, LockTimeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("torture child: open the journal to settle sends: %w", err)
	}
	defer s.Close()
	for _, m := range pending {
		found, err := messageStored(s, m)
		if err != nil {
			return nil, err
		}
		verb := "send-lost"
		if found {
			verb = "send-found"
			sent[m.Body] = true
		}
		if err := l.Append("%s %s", verb, m.Body); err != nil {
			return nil, err
		}
	}
	return sent, nil
}

// messageStored reports whether m is in its run's inbox or journal.
func messageStored(s journal.Store, m Message) (bool, error) {
	ctx := context.Background()
	msgs, err := s.Messages(ctx, m.Run, m.Channel, 0)
	if err != nil {
		return false, fmt.Errorf("torture: inbox of %s: %w", m.Run, err)
	}
	for _, x := range msgs {
		if bytes.Contains(x.Data, []byte(m.Body)) {
			return true, nil
		}
	}
	recs, err := s.Records(ctx, m.Run)
	if err != nil {
		return false, fmt.Errorf("torture: records of %s: %w", m.Run, err)
	}
	for _, r := range recs {
		if bytes.Contains(r.Data, []byte(m.Body)) {
			return true, nil
		}
	}
	return false, nil
}

// sendAll sends the round's messages that are not sent, in order, with
// short random pauses.
func sendAll(ctx context.Context, e *durable.Engine, l *crashtest.Log, r Round, sent map[string]bool, rng *rand.Rand) error {
	for _, m := range r.Messages {
		if sent[m.Body] {
			continue
		}
		select {
		case <-time.After(time.Duration(rng.IntN(10)) * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
		if err := l.Append("send-begin %s", m.Body); err != nil {
			return err
		}
		if err := durable.Send(ctx, e, m.Run, m.Channel, m.Body); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("torture child: send %s: %w", m.Body, err)
		}
		if err := l.Append("send-end %s", m.Body); err != nil {
			return err
		}
	}
	return nil
}
