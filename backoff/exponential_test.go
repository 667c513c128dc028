package backoff_test

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable/backoff"
)

func TestExponentialNoJitter(t *testing.T) {
	t.Parallel()
	const maxDuration = time.Duration(math.MaxInt64)
	tests := []struct {
		name string
		e    backoff.Exponential
		want []time.Duration // Delay(1), Delay(2), …
	}{
		{
			name: "zero value uses defaults",
			e:    backoff.Exponential{},
			want: []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
				16 * time.Second, 32 * time.Second, time.Minute, time.Minute},
		},
		{
			name: "custom fields",
			e:    backoff.Exponential{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 3},
			want: []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond, time.Second, time.Second},
		},
		{
			name: "fractional multiplier",
			e:    backoff.Exponential{Multiplier: 1.5},
			want: []time.Duration{time.Second, 1500 * time.Millisecond, 2250 * time.Millisecond, 3375 * time.Millisecond},
		},
		{
			name: "multiplier 1 is constant",
			e:    backoff.Exponential{Initial: 3 * time.Second, Multiplier: 1},
			want: []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second},
		},
		{
			name: "multiplier below 1 is treated as 1",
			e:    backoff.Exponential{Initial: 3 * time.Second, Multiplier: 0.5},
			want: []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second},
		},
		{
			name: "negative multiplier uses default",
			e:    backoff.Exponential{Multiplier: -3},
			want: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
		},
		{
			name: "NaN multiplier uses default",
			e:    backoff.Exponential{Multiplier: math.NaN()},
			want: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
		},
		{
			name: "infinite multiplier jumps to max",
			e:    backoff.Exponential{Multiplier: math.Inf(1)},
			want: []time.Duration{time.Second, time.Minute, time.Minute},
		},
		{
			name: "negative initial uses default",
			e:    backoff.Exponential{Initial: -time.Second},
			want: []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name: "negative max uses default",
			e:    backoff.Exponential{Initial: 40 * time.Second, Max: -time.Second},
			want: []time.Duration{40 * time.Second, time.Minute},
		},
		{
			name: "initial above max is capped",
			e:    backoff.Exponential{Initial: time.Hour, Max: time.Minute},
			want: []time.Duration{time.Minute, time.Minute},
		},
		{
			name: "huge initial and multiplier saturate at max",
			e:    backoff.Exponential{Initial: 1 << 62, Max: maxDuration, Multiplier: 1e300},
			want: []time.Duration{1 << 62, maxDuration, maxDuration},
		},
		{
			name: "max initial and max",
			e:    backoff.Exponential{Initial: maxDuration, Max: maxDuration},
			want: []time.Duration{maxDuration, maxDuration},
		},
		{
			name: "largest multiplier",
			e:    backoff.Exponential{Max: time.Hour, Multiplier: math.MaxFloat64},
			want: []time.Duration{time.Second, time.Hour, time.Hour},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for i, want := range tt.want {
				if got := tt.e.Delay(i + 1); got != want {
					t.Errorf("Delay(%d) = %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

func TestExponentialAttemptRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		e       backoff.Exponential
		attempt int
		want    time.Duration
	}{
		{"attempt 0 is 1", backoff.Exponential{}, 0, time.Second},
		{"negative attempt is 1", backoff.Exponential{}, -5, time.Second},
		{"min int attempt is 1", backoff.Exponential{}, math.MinInt, time.Second},
		{"attempt 1<<20 is capped", backoff.Exponential{}, 1 << 20, time.Minute},
		{"attempt 1<<62 is capped", backoff.Exponential{}, 1 << 62, time.Minute},
		{"max int attempt is capped", backoff.Exponential{}, math.MaxInt, time.Minute},
		{"max int attempt, large max", backoff.Exponential{Max: math.MaxInt64}, math.MaxInt, math.MaxInt64},
		{"max int attempt, multiplier 1", backoff.Exponential{Multiplier: 1}, math.MaxInt, time.Second},
		{"max int attempt, huge multiplier", backoff.Exponential{Initial: 1 << 62, Multiplier: 1e300}, math.MaxInt, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.e.Delay(tt.attempt); got != tt.want {
				t.Errorf("Delay(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

// fixed returns a Rand that always returns r.
func fixed(r float64) func() float64 { return func() float64 { return r } }

func TestExponentialJitterInjected(t *testing.T) {
	t.Parallel()
	const d = time.Second // Initial == Max, so the unjittered delay is always d
	tests := []struct {
		name   string
		jitter backoff.Jitter
		r      float64
		want   time.Duration
	}{
		{"full 0", backoff.FullJitter, 0, 0},
		{"full 0.5", backoff.FullJitter, 0.5, d / 2},
		{"full 0.999999", backoff.FullJitter, 0.999999, d - time.Microsecond},
		{"full 1 is clamped below d", backoff.FullJitter, 1, d - 1},
		{"full 2 is clamped below d", backoff.FullJitter, 2, d - 1},
		{"full +Inf is clamped below d", backoff.FullJitter, math.Inf(1), d - 1},
		{"full negative is clamped to 0", backoff.FullJitter, -0.5, 0},
		{"full NaN is 0", backoff.FullJitter, math.NaN(), 0},
		{"equal 0", backoff.EqualJitter, 0, d / 2},
		{"equal 0.5", backoff.EqualJitter, 0.5, d * 3 / 4},
		{"equal 0.999999", backoff.EqualJitter, 0.999999, d - 500*time.Nanosecond},
		{"equal 1 is clamped below d", backoff.EqualJitter, 1, d - 1},
		{"equal negative is clamped to d/2", backoff.EqualJitter, -1, d / 2},
		{"equal NaN is d/2", backoff.EqualJitter, math.NaN(), d / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := backoff.Exponential{Initial: d, Max: d, Jitter: tt.jitter, Rand: fixed(tt.r)}
			for _, attempt := range []int{1, 2, 10} {
				if got := e.Delay(attempt); got != tt.want {
					t.Errorf("Delay(%d) = %v, want %v", attempt, got, tt.want)
				}
			}
		})
	}
}

func TestExponentialNoJitterSkipsRand(t *testing.T) {
	t.Parallel()
	for _, j := range []backoff.Jitter{backoff.NoJitter, backoff.Jitter(7), backoff.Jitter(-1)} {
		e := backoff.Exponential{Jitter: j, Rand: func() float64 {
			t.Errorf("%v: Rand called", j)
			return 0
		}}
		if got := e.Delay(2); got != 2*time.Second {
			t.Errorf("%v: Delay(2) = %v, want 2s", j, got)
		}
	}
}

func TestExponentialJitterBounds(t *testing.T) {
	t.Parallel()
	const samples = 10000
	tests := []struct {
		name   string
		e      backoff.Exponential
		inject bool // use Rand = fixed(0) and fixed(below 1) instead of the real source
	}{
		{"full, real source", backoff.Exponential{Jitter: backoff.FullJitter}, false},
		{"equal, real source", backoff.Exponential{Jitter: backoff.EqualJitter}, false},
		{"full, huge, real source", backoff.Exponential{Initial: math.MaxInt64, Max: math.MaxInt64, Jitter: backoff.FullJitter}, false},
		{"equal, huge, real source", backoff.Exponential{Initial: math.MaxInt64, Max: math.MaxInt64, Jitter: backoff.EqualJitter}, false},
		{"full, huge, extremes", backoff.Exponential{Initial: math.MaxInt64, Max: math.MaxInt64, Jitter: backoff.FullJitter}, true},
		{"equal, huge, extremes", backoff.Exponential{Initial: math.MaxInt64, Max: math.MaxInt64, Jitter: backoff.EqualJitter}, true},
		{"full, 1ns", backoff.Exponential{Initial: 1, Max: 1, Jitter: backoff.FullJitter}, true},
		{"equal, 1ns", backoff.Exponential{Initial: 1, Max: 1, Jitter: backoff.EqualJitter}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plain := tt.e
			plain.Jitter = backoff.NoJitter
			var delays []func(attempt int) time.Duration
			if tt.inject {
				for _, r := range []float64{0, math.Nextafter(1, 0)} {
					e := tt.e
					e.Rand = fixed(r)
					delays = append(delays, e.Delay)
				}
			} else {
				delays = append(delays, tt.e.Delay)
			}
			seen := map[time.Duration]bool{}
			for i := range samples {
				attempt := i%10 + 1
				d := plain.Delay(attempt)
				lo, hi := time.Duration(0), max(d-1, 0) // FullJitter: [0, d)
				if tt.e.Jitter == backoff.EqualJitter {
					lo, hi = d/2, d/2+max(d/2-1, 0) // [d/2, d/2 + d/2)
				}
				for _, delay := range delays {
					got := delay(attempt)
					if got < lo || got > hi {
						t.Fatalf("Delay(%d) = %v, want in [%v, %v]", attempt, got, lo, hi)
					}
					seen[got] = true
				}
			}
			if !tt.inject && len(seen) < samples/2 {
				t.Errorf("only %d distinct delays in %d samples", len(seen), samples)
			}
		})
	}
}

func TestExponentialConcurrent(t *testing.T) {
	t.Parallel()
	e := backoff.Exponential{Jitter: backoff.FullJitter}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for attempt := range 1000 {
				if d := e.Delay(attempt); d < 0 || d > time.Minute {
					t.Errorf("Delay(%d) = %v, want in [0, 1m]", attempt, d)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzExponential(f *testing.F) {
	f.Add(int64(0), int64(0), 0.0, 0, 0.5, 1)
	f.Add(int64(time.Second), int64(time.Minute), 2.0, 1, 0.999999, 10)
	f.Add(int64(1<<62), int64(math.MaxInt64), 1e300, 2, 1.0, math.MaxInt)
	f.Add(int64(math.MaxInt64), int64(-1), math.Inf(1), 2, math.NaN(), math.MinInt)
	f.Add(int64(-1), int64(1), 0.5, 7, -1.0, 1<<62)
	f.Fuzz(func(t *testing.T, initial, maxDelay int64, mult float64, jitter int, r float64, attempt int) {
		e := backoff.Exponential{
			Initial:    time.Duration(initial),
			Max:        time.Duration(maxDelay),
			Multiplier: mult,
			Jitter:     backoff.Jitter(jitter),
			Rand:       fixed(r),
		}
		limit := e.Max
		if limit <= 0 {
			limit = time.Minute
		}
		plain := e
		plain.Jitter = backoff.NoJitter
		nominal := plain.Delay(attempt)
		if nominal <= 0 || nominal > limit {
			t.Fatalf("%+v: NoJitter Delay(%d) = %v, want in (0, %v]", plain, attempt, nominal, limit)
		}
		got := e.Delay(attempt)
		switch e.Jitter {
		case backoff.FullJitter:
			if got < 0 || got >= nominal {
				t.Fatalf("%+v: Delay(%d) = %v, want in [0, %v)", e, attempt, got, nominal)
			}
		case backoff.EqualJitter:
			if got < nominal/2 || got > nominal {
				t.Fatalf("%+v: Delay(%d) = %v, want in [%v, %v]", e, attempt, got, nominal/2, nominal)
			}
		default:
			if got != nominal {
				t.Fatalf("%+v: Delay(%d) = %v, want %v", e, attempt, got, nominal)
			}
		}
	})
}
