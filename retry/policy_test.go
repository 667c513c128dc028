package retry_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

var errBoom = errors.New("boom")

func TestAttempts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		max  int
		want int
	}{
		{0, 3},
		{1, 1},
		{5, 5},
		{-1, math.MaxInt},
		{math.MinInt, math.MaxInt},
	}
	for _, tt := range tests {
		if got := (retry.Policy{MaxAttempts: tt.max}).Attempts(); got != tt.want {
			t.Errorf("Policy{MaxAttempts: %d}.Attempts() = %d, want %d", tt.max, got, tt.want)
		}
	}
}

// negative is a Backoff that breaks its contract.
type negative struct{}

func (negative) Delay(int) time.Duration { return -time.Second }

func TestNext(t *testing.T) {
	t.Parallel()
	const step = 2 * time.Second
	constant := backoff.Constant(step)
	onlyBoom := func(err error) bool { return errors.Is(err, errBoom) }
	tests := []struct {
		name      string
		p         retry.Policy
		attempt   int
		err       error
		wantDelay time.Duration
		wantOK    bool
	}{
		{"nil error", retry.Policy{Backoff: constant}, 1, nil, 0, false},
		{"nil error, unlimited", retry.Policy{MaxAttempts: -1, Backoff: constant}, 1, nil, 0, false},
		{"default max, attempt 1", retry.Policy{Backoff: constant}, 1, errBoom, step, true},
		{"default max, attempt 2", retry.Policy{Backoff: constant}, 2, errBoom, step, true},
		{"default max, attempt 3", retry.Policy{Backoff: constant}, 3, errBoom, 0, false},
		{"default max, attempt 4", retry.Policy{Backoff: constant}, 4, errBoom, 0, false},
		{"attempt 0 counts as 1", retry.Policy{MaxAttempts: 2, Backoff: constant}, 0, errBoom, step, true},
		{"negative attempt counts as 1", retry.Policy{MaxAttempts: 2, Backoff: constant}, -7, errBoom, step, true},
		{"max 1 never retries", retry.Policy{MaxAttempts: 1, Backoff: constant}, 1, errBoom, 0, false},
		{"max 5, attempt 4", retry.Policy{MaxAttempts: 5, Backoff: constant}, 4, errBoom, step, true},
		{"max 5, attempt 5", retry.Policy{MaxAttempts: 5, Backoff: constant}, 5, errBoom, 0, false},
		{"unlimited, attempt 1000", retry.Policy{MaxAttempts: -1, Backoff: constant}, 1000, errBoom, step, true},
		{"unlimited, attempt MaxInt", retry.Policy{MaxAttempts: -1, Backoff: constant}, math.MaxInt, errBoom, step, true},
		{"backoff gets the attempt", retry.Policy{MaxAttempts: -1, Backoff: backoff.Exponential{}}, 4, errBoom, 8 * time.Second, true},
		{"negative backoff delay is 0", retry.Policy{Backoff: negative{}}, 1, errBoom, 0, true},

		{"permanent stops at attempt 1", retry.Policy{MaxAttempts: -1, Backoff: constant}, 1, retry.Permanent(errBoom), 0, false},
		{"wrapped permanent stops", retry.Policy{Backoff: constant}, 1, fmt.Errorf("op: %w", retry.Permanent(errBoom)), 0, false},
		{"joined permanent stops", retry.Policy{Backoff: constant}, 1, errors.Join(errBoom, retry.Permanent(errBoom)), 0, false},
		{"permanent wins over classifier", retry.Policy{Backoff: constant, Retryable: onlyBoom}, 1, retry.Permanent(errBoom), 0, false},

		{"classifier true retries", retry.Policy{Backoff: constant, Retryable: onlyBoom}, 1, fmt.Errorf("op: %w", errBoom), step, true},
		{"classifier false stops", retry.Policy{MaxAttempts: -1, Backoff: constant, Retryable: onlyBoom}, 1, errors.New("other"), 0, false},
		{"classifier true, max reached", retry.Policy{Backoff: constant, Retryable: onlyBoom}, 3, errBoom, 0, false},

		{"hint smaller than backoff", retry.Policy{Backoff: constant}, 1, retry.After(errBoom, time.Second), step, true},
		{"hint larger than backoff", retry.Policy{Backoff: constant}, 1, retry.After(errBoom, time.Minute), time.Minute, true},
		{"hint equal to backoff", retry.Policy{Backoff: constant}, 1, retry.After(errBoom, step), step, true},
		{"wrapped hint", retry.Policy{Backoff: constant}, 1, fmt.Errorf("op: %w", retry.After(errBoom, time.Minute)), time.Minute, true},
		{"negative hint", retry.Policy{Backoff: constant}, 1, retry.After(errBoom, -time.Minute), step, true},
		{"hint with zero backoff", retry.Policy{Backoff: backoff.Constant(0)}, 1, retry.After(errBoom, time.Second), time.Second, true},
		{"hint does not beat permanent", retry.Policy{Backoff: constant}, 1, retry.After(retry.Permanent(errBoom), time.Minute), 0, false},
		{"hint does not beat classifier", retry.Policy{Backoff: constant, Retryable: onlyBoom}, 1, retry.After(errors.New("other"), time.Minute), 0, false},
		{"hint does not beat max attempts", retry.Policy{Backoff: constant}, 3, retry.After(errBoom, time.Minute), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			delay, ok := tt.p.Next(tt.attempt, tt.err)
			if delay != tt.wantDelay || ok != tt.wantOK {
				t.Errorf("Next(%d, %v) = (%v, %v), want (%v, %v)", tt.attempt, tt.err, delay, ok, tt.wantDelay, tt.wantOK)
			}
		})
	}
}

func TestNextDefaultBackoff(t *testing.T) {
	t.Parallel()
	// The default is Exponential{Initial: 1s, Max: 1m, Multiplier: 2,
	// Jitter: EqualJitter}: after attempt n, a delay in [d/2, d) with
	// d = min(2^(n-1) s, 1m).
	p := retry.Policy{MaxAttempts: -1}
	for range 100 {
		for attempt := 1; attempt <= 10; attempt++ {
			d := min(time.Second<<(attempt-1), time.Minute)
			delay, ok := p.Next(attempt, errBoom)
			if !ok || delay < d/2 || delay >= d {
				t.Fatalf("Next(%d) = (%v, %v), want (in [%v, %v), true)", attempt, delay, ok, d/2, d)
			}
		}
	}
}

func TestNextClassifierSeesFullError(t *testing.T) {
	t.Parallel()
	wrapped := fmt.Errorf("charge card: %w", retry.After(errBoom, time.Second))
	var got error
	p := retry.Policy{Backoff: backoff.Constant(0), Retryable: func(err error) bool {
		got = err
		return true
	}}
	p.Next(1, wrapped)
	if got != wrapped {
		t.Errorf("Retryable got %v, want %v", got, wrapped)
	}
}
