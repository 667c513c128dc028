package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// The event stream (GET api/events) is server-sent events. Every
// Options.PollInterval the handler looks at the journal's commit count
// (journal.StatsReporter); when it moved (or the store does not report
// one) it reads the run list and sends a "run" event for each run whose
// status, update time, wake time or cancel flag changed since the last
// look, then a "tick" event so that a page showing one run's timeline
// reloads it. A comment line every 15 seconds keeps proxies from closing
// an idle stream. It reads at most maxWatch runs per look.

// maxWatch bounds the runs the event stream compares per look.
const maxWatch = 10_000

// runSig is what the event stream compares to notice that a run changed.
type runSig struct {
	status        durable.Status
	updated, wake time.Time
	cancel        bool
}

// snapshot reads the runs the stream watches (one run if only is not "").
func (s *server) snapshot(ctx context.Context, only string) (map[string]runSig, error) {
	out := map[string]runSig{}
	add := func(info durable.RunInfo) {
		sig := runSig{status: info.Status, updated: info.UpdatedAt, wake: info.WakeAt, cancel: info.CancelRequested}
		out[info.ID] = sig
	}
	if only != "" {
		info, err := s.e.Get(ctx, only)
		if err != nil {
			return out, err
		}
		add(info)
		return out, nil
	}
	after := ""
	for len(out) < maxWatch {
		page, err := s.e.List(ctx, durable.ListOptions{After: after, Limit: maxLimit})
		if err != nil {
			return out, err
		}
		for _, info := range page.Runs {
			add(info)
		}
		if page.NextAfter == "" {
			break
		}
		after = page.NextAfter
	}
	return out, nil
}

// events serves GET api/events: the stream of run changes. With ?run=ID
// it follows that run only.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming is not supported by this server")
		return
	}
	ctx := r.Context()
	only := r.URL.Query().Get("run")
	prev, err := s.snapshot(ctx, only)
	if err != nil {
		engineError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\nevent: ready\ndata: {}\n\n")
	fl.Flush()

	lastTx := s.e.Stats().Store.Transactions
	poll := time.NewTicker(s.opts.PollInterval)
	defer poll.Stop()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			fl.Flush()
			continue
		case <-poll.C:
		}
		tx := s.e.Stats().Store.Transactions
		if tx == lastTx && tx != 0 {
			continue
		}
		lastTx = tx
		cur, err := s.snapshot(ctx, only)
		if errors.Is(err, durable.ErrClosed) || errors.Is(err, journal.ErrClosed) {
			return // the engine closed: the client reconnects to the next one
		}
		if err != nil {
			continue // the next look tries again
		}
		now := s.opts.Now()
		for id, sig := range cur {
			if old, ok := prev[id]; ok && old == sig {
				continue
			}
			info, err := s.e.Get(ctx, id)
			if err != nil {
				continue
			}
			b, _ := json.Marshal(RunOf(info, now))
			fmt.Fprintf(w, "event: run\ndata: %s\n\n", b)
		}
		prev = cur
		fmt.Fprintf(w, "event: tick\ndata: {\"transactions\":%d}\n\n", tx)
		fl.Flush()
	}
}
