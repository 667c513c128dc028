package durabletest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/retry"
)

// flakyWait runs a step that fails three times under the default
// backoff (equal jitter) and returns how long the retries took.
func flakyWait(t *testing.T, seed uint64) time.Duration {
	var took time.Duration
	synctest.Test(t, func(t *testing.T) {
		wf := durable.Define("flaky", func(ctx durable.Context, _ int) (time.Duration, error) {
			start := durable.Now(ctx)
			if _, err := durable.Step(ctx, "call", func(ctx context.Context) (int, error) {
				if info, _ := durable.StepInfoFrom(ctx); info.Attempt < 4 {
					return 0, errors.New("503")
				}
				return 1, nil
			}, durable.WithRetry(retry.Policy{MaxAttempts: 5})); err != nil {
				return 0, err
			}
			return durable.Now(ctx).Sub(start), nil
		})
		env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{wf}, RetrySeed: seed})
		d, err := durable.Run(t.Context(), env.Engine, wf, "f", 0)
		if err != nil {
			t.Fatal(err)
		}
		took = d
	})
	return took
}

func TestRetrySeed(t *testing.T) {
	t.Parallel()
	a, b, c := flakyWait(t, 7), flakyWait(t, 7), flakyWait(t, 8)
	if a != b {
		t.Errorf("seed 7 gave %v, then %v", a, b)
	}
	if a == c {
		t.Errorf("seeds 7 and 8 both gave %v", a)
	}
	// Equal jitter of 1s, 2s, 4s: between half and all of 7s.
	if a < 3500*time.Millisecond || a >= 7*time.Second {
		t.Errorf("retries took %v, want [3.5s, 7s)", a)
	}
}

// seedT records logs and cleanups, and reports failure.
type seedT struct {
	testing.TB
	logs     []string
	cleanups []func()
}

func (t *seedT) Helper()          {}
func (t *seedT) Failed() bool     { return true }
func (t *seedT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *seedT) Logf(format string, args ...any) {
	t.logs = append(t.logs, fmt.Sprintf(format, args...))
}
func (t *seedT) Fatalf(format string, args ...any) { t.Logf(format, args...) }

// TestSeedPrintedOnFailure: a failed test says which seed it ran with and
// how to run it again with that seed.
func TestSeedPrintedOnFailure(t *testing.T) {
	ft := &seedT{}
	seed := durabletest.Seed(ft)
	for _, f := range ft.cleanups {
		f()
	}
	want := fmt.Sprintf("%s=%d", durabletest.SeedEnv, seed)
	if seed == 0 || len(ft.logs) != 1 || !strings.Contains(ft.logs[0], want) {
		t.Errorf("seed %d, logs %q; want one that says %s", seed, ft.logs, want)
	}
	t.Setenv(durabletest.SeedEnv, "12345")
	if got := durabletest.Seed(&seedT{}); got != 12345 {
		t.Errorf("with %s=12345, Seed = %d", durabletest.SeedEnv, got)
	}
}
