package web

import (
	"context"
	"net/http"
	"time"

	"github.com/durable-go/durable"
)

// maxCount bounds how many runs of each status api/stats counts: counting
// reads the runs, so a very large journal is counted only this far.
const maxCount = 10_000

// rateSample is one reading of the engine's counters.
type rateSample struct {
	at    time.Time
	stats durable.Stats
}

// rates are figures over the window between two readings.
type rates struct {
	StepsPerSecond        float64 `json:"steps_per_second"`
	CommitsPerTransaction float64 `json:"commits_per_transaction"`
	CommitMillis          float64 `json:"commit_ms"` // mean time of a transaction, fsync included
	Window                float64 `json:"window_seconds"`
}

// minWindow is the shortest window rates are computed over; readings
// closer together return the previous rates.
const minWindow = time.Second

// sample reads the engine's counters and returns them with the rates
// since the previous reading (since the engine opened, the first time).
func (s *server) sample() (durable.Stats, rates) {
	st := s.e.Stats()
	now := time.Now()
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	prev := s.last
	if prev.at.IsZero() {
		prev = rateSample{at: st.Since}
	}
	if win := now.Sub(prev.at); win >= minWindow || s.rates.Window == 0 {
		var r rates
		r.Window = win.Seconds()
		if win > 0 {
			r.StepsPerSecond = float64(st.Steps-prev.stats.Steps) / win.Seconds()
		}
		if n := st.Store.Transactions - prev.stats.Store.Transactions; n > 0 {
			r.CommitsPerTransaction = float64(st.Store.Commits-prev.stats.Store.Commits) / float64(n)
			r.CommitMillis = float64(st.Store.CommitTime-prev.stats.Store.CommitTime) / float64(n) / float64(time.Millisecond)
		}
		s.rates = r
		s.last = rateSample{at: now, stats: st}
	}
	return st, s.rates
}

// statsBody is the response of GET api/stats.
type statsBody struct {
	Runs       map[string]int `json:"runs"`
	RunsCapped bool           `json:"runs_capped"`
	Engine     engineFigures  `json:"engine"`
}

type engineFigures struct {
	Since        string `json:"since"`
	Steps        uint64 `json:"steps"`
	LoadedRuns   int    `json:"loaded_runs"`
	CachedRuns   int    `json:"cached_runs"`
	Evictions    uint64 `json:"evicted_runs"`
	Transactions uint64 `json:"transactions"`
	Commits      uint64 `json:"commits"`
	rates
}

// countRuns counts runs by status, up to maxCount each.
func (s *server) countRuns(ctx context.Context) (map[string]int, bool, error) {
	out := map[string]int{}
	capped := false
	for name, st := range statusByName {
		n, after := 0, ""
		for n < maxCount {
			page, err := s.e.List(ctx, durable.ListOptions{Status: st, After: after, Limit: maxLimit})
			if err != nil {
				return nil, false, err
			}
			n += len(page.Runs)
			if page.NextAfter == "" {
				break
			}
			after = page.NextAfter
		}
		if n >= maxCount {
			capped = true
		}
		out[name] = n
	}
	return out, capped, nil
}

// stats serves GET api/stats.
func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	runs, capped, err := s.countRuns(r.Context())
	if err != nil {
		engineError(w, err)
		return
	}
	st, rt := s.sample()
	writeJSON(w, http.StatusOK, statsBody{Runs: runs, RunsCapped: capped, Engine: engineFigures{
		Since: stamp(st.Since), Steps: st.Steps, LoadedRuns: st.LoadedRuns, CachedRuns: st.CachedRuns,
		Evictions: st.Evictions, Transactions: st.Store.Transactions, Commits: st.Store.Commits, rates: rt,
	}})
}
