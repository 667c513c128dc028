package main

// The -compare-limits mode: the same 120 exports through a fixed and an
// adaptive limit, against an API that answers 429 whenever more than 4
// calls are in flight.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

const (
	compareCalls    = 120
	compareCapacity = 4 // the API's hidden capacity
	compareMax      = 16
)

// crowdedAPI answers 429 with Retry-After when more than its capacity of
// calls are in flight, and 200 after 20ms otherwise.
type crowdedAPI struct {
	inFlight, rejected atomic.Int64
}

func (a *crowdedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := a.inFlight.Add(1)
	defer a.inFlight.Add(-1)
	if n > compareCapacity {
		a.rejected.Add(1)
		w.Header().Set("Retry-After", "0") // whole seconds: retry at once
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	time.Sleep(20 * time.Millisecond)
	w.WriteHeader(http.StatusOK)
}

// compareLimits runs compareCalls one-step runs through a fixed and then
// an adaptive limit of compareMax and prints the 429s each drew.
func compareLimits(dir string) error {
	for _, lim := range []durable.Limit{
		{MaxConcurrent: compareMax},
		{MaxConcurrent: compareMax, Adaptive: true},
	} {
		rejected, took, bound, err := compareOnce(filepath.Join(dir, "compare-"+strconv.FormatBool(lim.Adaptive)+".db"), lim)
		if err != nil {
			return err
		}
		kind := "fixed   "
		if lim.Adaptive {
			kind = "adaptive"
		}
		fmt.Printf("%s limit (MaxConcurrent %d): %d calls, %4d 429s, %v; concurrency at the end %d (the API's hidden capacity is %d)\n",
			kind, compareMax, compareCalls, rejected, took.Round(10*time.Millisecond), bound, compareCapacity)
	}
	return nil
}

func compareOnce(path string, lim durable.Limit) (rejected int64, took time.Duration, bound int, err error) {
	api := &crowdedAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	call := durable.Define("call", func(ctx durable.Context, n int) (int, error) {
		return durable.Step(ctx, "put", func(ctx context.Context) (int, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL, nil)
			if err != nil {
				return 0, err
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				return 0, retry.After(errors.New(resp.Status), time.Duration(secs)*time.Second)
			}
			return n, nil
		}, durable.WithLimit("api"), durable.WithRetry(retry.Policy{MaxAttempts: -1, Backoff: backoff.Constant(5 * time.Millisecond)}))
	})
	e, err := durable.Open(path, &durable.Config{Workflows: []durable.Definition{call}, Limits: map[string]durable.Limit{"api": lim}})
	if err != nil {
		return 0, 0, 0, err
	}
	defer e.Close()
	ctx := context.Background()
	start := time.Now()
	hs := make([]*durable.Handle[int], compareCalls)
	for i := range hs {
		if hs[i], err = durable.Start(ctx, e, call, fmt.Sprintf("call-%03d", i), i); err != nil {
			return 0, 0, 0, err
		}
	}
	for _, h := range hs {
		if _, err := h.Result(ctx); err != nil {
			return 0, 0, 0, err
		}
	}
	took = time.Since(start)
	return api.rejected.Load(), took, e.Stats().Limits["api"].Concurrency, nil
}
