package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/durable-go/durable/backoff"
)

// Both implementations satisfy the interface.
var (
	_ backoff.Backoff = backoff.Constant(0)
	_ backoff.Backoff = backoff.Exponential{}
)

func TestConstant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    backoff.Constant
		want time.Duration
	}{
		{"zero", 0, 0},
		{"positive", backoff.Constant(5 * time.Second), 5 * time.Second},
		{"one nanosecond", 1, 1},
		{"negative", backoff.Constant(-5 * time.Second), 0},
		{"min", backoff.Constant(math.MinInt64), 0},
		{"max", backoff.Constant(math.MaxInt64), math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, attempt := range []int{math.MinInt, -1, 0, 1, 2, 100, math.MaxInt} {
				if got := tt.c.Delay(attempt); got != tt.want {
					t.Errorf("Constant(%v).Delay(%d) = %v, want %v", time.Duration(tt.c), attempt, got, tt.want)
				}
			}
		})
	}
}

func TestJitterString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		j    backoff.Jitter
		want string
	}{
		{backoff.NoJitter, "NoJitter"},
		{backoff.FullJitter, "FullJitter"},
		{backoff.EqualJitter, "EqualJitter"},
		{backoff.Jitter(7), "Jitter(7)"},
		{backoff.Jitter(-1), "Jitter(-1)"},
	}
	for _, tt := range tests {
		if got := tt.j.String(); got != tt.want {
			t.Errorf("Jitter(%d).String() = %q, want %q", int(tt.j), got, tt.want)
		}
	}
	var zero backoff.Jitter
	if zero != backoff.NoJitter {
		t.Errorf("zero Jitter = %v, want NoJitter", zero)
	}
}
