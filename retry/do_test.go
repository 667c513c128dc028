package retry_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

// failing returns an fn that fails with the errors in errs, one per call,
// then succeeds; it counts calls in *calls.
func failing(calls *int, errs ...error) func(context.Context) error {
	return func(context.Context) error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

func TestDoSucceedsAfterFailures(t *testing.T) {
	t.Parallel()
	calls := 0
	p := retry.Policy{MaxAttempts: 5, Backoff: backoff.Constant(time.Millisecond)}
	if err := retry.Do(t.Context(), p, failing(&calls, errBoom, errBoom)); err != nil {
		t.Fatalf("Do = %v, want nil", err)
	}
	if calls != 3 {
		t.Errorf("calls = %d, want 3", calls)
	}
}

func TestDoStops(t *testing.T) {
	t.Parallel()
	onlyBoom := func(err error) bool { return errors.Is(err, errBoom) }
	other := errors.New("other")
	tests := []struct {
		name      string
		p         retry.Policy
		errs      []error // errors of the first calls; later calls fail with errBoom
		wantCalls int
		wantMsg   string
		wantIs    error
	}{
		{"default max", retry.Policy{}, nil, 3, "retry: gave up after 3 attempts: boom", errBoom},
		{"max 1", retry.Policy{MaxAttempts: 1}, nil, 1, "retry: gave up after 1 attempt: boom", errBoom},
		{"permanent at once", retry.Policy{MaxAttempts: -1}, []error{retry.Permanent(errBoom)}, 1, "retry: gave up after 1 attempt: boom", errBoom},
		{"permanent later", retry.Policy{MaxAttempts: -1}, []error{errBoom, retry.Permanent(other)}, 2, "retry: gave up after 2 attempts: other", other},
		{"classifier false", retry.Policy{MaxAttempts: -1, Retryable: onlyBoom}, []error{errBoom, other}, 2, "retry: gave up after 2 attempts: other", other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				fn := func(context.Context) error {
					calls++
					if calls <= len(tt.errs) {
						return tt.errs[calls-1]
					}
					return errBoom
				}
				err := retry.Do(t.Context(), tt.p, fn)
				if err == nil || err.Error() != tt.wantMsg {
					t.Errorf("Do = %v, want %q", err, tt.wantMsg)
				}
				if !errors.Is(err, tt.wantIs) {
					t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.wantIs)
				}
				if calls != tt.wantCalls {
					t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
				}
			})
		})
	}
}

func TestDoWaitsBackoffAndHint(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		calls := 0
		p := retry.Policy{Backoff: backoff.Constant(time.Second)}
		err := retry.Do(t.Context(), p, func(context.Context) error {
			at = append(at, time.Since(start))
			calls++
			if calls == 1 {
				return retry.After(errBoom, time.Minute) // hint beats backoff
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Do = %v, want errBoom", err)
		}
		want := []time.Duration{0, time.Minute, time.Minute + time.Second}
		if len(at) != len(want) {
			t.Fatalf("attempts at %v, want %v", at, want)
		}
		for i := range want {
			if at[i] != want[i] {
				t.Errorf("attempt %d at %v, want %v", i+1, at[i], want[i])
			}
		}
	})
}

func TestDoContextDoneDuringWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ctx      func(context.Context) (context.Context, context.CancelFunc)
		cancelAt time.Duration // when the test cancels; 0: never
		wantErr  error
		wantAt   time.Duration // when Do returns
		want     int           // calls
	}{
		{
			name:     "canceled",
			ctx:      context.WithCancel,
			cancelAt: 30 * time.Minute,
			wantErr:  context.Canceled,
			wantAt:   30 * time.Minute,
			want:     1,
		},
		{
			name: "deadline",
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 90*time.Minute)
			},
			wantErr: context.DeadlineExceeded,
			wantAt:  90 * time.Minute,
			want:    2, // at 0 and 1h; the wait for 2h is cut short
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				ctx, cancel := tt.ctx(t.Context())
				defer cancel()
				calls := 0
				p := retry.Policy{MaxAttempts: -1, Backoff: backoff.Constant(time.Hour)}
				done := make(chan error)
				go func() {
					done <- retry.Do(ctx, p, func(context.Context) error {
						calls++
						return errBoom
					})
				}()
				if tt.cancelAt > 0 {
					time.Sleep(tt.cancelAt)
					synctest.Wait() // Do is blocked in its wait
					cancel()
				}
				err := <-done
				if got := time.Since(start); got != tt.wantAt {
					t.Errorf("Do returned after %v, want %v", got, tt.wantAt)
				}
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, errBoom) {
					t.Errorf("Do = %v, want it to wrap %v and errBoom", err, tt.wantErr)
				}
				if calls != tt.want {
					t.Errorf("calls = %d, want %d", calls, tt.want)
				}
			})
		})
	}
}

func TestDoContextDoneByAttempt(t *testing.T) {
	t.Parallel()
	// With no delay, Do must still see the canceled context rather than
	// race a ready timer against ctx.Done.
	for range 100 {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		p := retry.Policy{MaxAttempts: -1, Backoff: backoff.Constant(0)}
		err := retry.Do(ctx, p, func(context.Context) error {
			calls++
			cancel()
			return errBoom
		})
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errBoom) {
			t.Fatalf("Do = %v, want it to wrap context.Canceled and errBoom", err)
		}
		if want := "retry: context canceled after 1 attempt: boom"; err.Error() != want {
			t.Fatalf("Do = %q, want %q", err, want)
		}
		if calls != 1 {
			t.Fatalf("calls = %d, want 1", calls)
		}
	}
}

func TestDoAttemptTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var deadlines []time.Duration
		p := retry.Policy{MaxAttempts: 3, Backoff: backoff.Constant(time.Second), Timeout: time.Minute}
		err := retry.Do(t.Context(), p, func(ctx context.Context) error {
			deadline, ok := ctx.Deadline()
			if !ok {
				t.Fatal("attempt context has no deadline")
			}
			deadlines = append(deadlines, deadline.Sub(start))
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do = %v, want context.DeadlineExceeded", err)
		}
		if want := "retry: gave up after 3 attempts: context deadline exceeded"; err.Error() != want {
			t.Errorf("Do = %q, want %q", err, want)
		}
		want := []time.Duration{time.Minute, 2*time.Minute + time.Second, 3*time.Minute + 2*time.Second}
		if len(deadlines) != len(want) {
			t.Fatalf("deadlines %v, want %v", deadlines, want)
		}
		for i := range want {
			if deadlines[i] != want[i] {
				t.Errorf("attempt %d deadline %v, want %v", i+1, deadlines[i], want[i])
			}
		}
		if got := time.Since(start); got != want[2] {
			t.Errorf("Do returned after %v, want %v", got, want[2])
		}
	})
}

func TestDoNoTimeout(t *testing.T) {
	t.Parallel()
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "v")
	err := retry.Do(ctx, retry.Policy{}, func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); ok {
			t.Error("attempt context has a deadline, want none")
		}
		if ctx.Value(key{}) != "v" {
			t.Error("attempt context lost the caller's values")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Do = %v, want nil", err)
	}
}

func TestDoRecoversPanic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		p         retry.Policy
		panics    int // calls that panic before one succeeds; -1: all
		value     any
		wantCalls int
		wantMsg   string // "" for success
		wantIs    error
	}{
		{"retried", retry.Policy{}, 1, "kaboom", 2, "", nil},
		{"gives up", retry.Policy{MaxAttempts: 2}, -1, "kaboom", 2, "retry: gave up after 2 attempts: retry: panic: kaboom", nil},
		{"error value", retry.Policy{MaxAttempts: 2}, -1, errBoom, 2, "retry: gave up after 2 attempts: retry: panic: boom", errBoom},
		{"permanent value", retry.Policy{MaxAttempts: -1}, -1, retry.Permanent(errBoom), 1, "retry: gave up after 1 attempt: retry: panic: boom", errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				err := retry.Do(t.Context(), tt.p, func(context.Context) error {
					calls++
					if tt.panics < 0 || calls <= tt.panics {
						panic(tt.value)
					}
					return nil
				})
				if calls != tt.wantCalls {
					t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
				}
				if tt.wantMsg == "" {
					if err != nil {
						t.Errorf("Do = %v, want nil", err)
					}
					return
				}
				if err == nil || err.Error() != tt.wantMsg {
					t.Fatalf("Do = %v, want %q", err, tt.wantMsg)
				}
				pe, ok := errors.AsType[*retry.PanicError](err)
				if !ok {
					t.Fatalf("Do = %v, want a *PanicError in the chain", err)
				}
				if pe.Value != tt.value || len(pe.Stack) == 0 {
					t.Errorf("PanicError{Value: %v, len(Stack): %d}, want Value %v and a stack", pe.Value, len(pe.Stack), tt.value)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.wantIs)
				}
			})
		})
	}
}

func TestDoValue(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		v, err := retry.DoValue(t.Context(), retry.Policy{}, func(context.Context) (string, error) {
			calls++
			if calls < 3 {
				return "partial", errBoom
			}
			return "ok", nil
		})
		if v != "ok" || err != nil || calls != 3 {
			t.Errorf("DoValue = (%q, %v) after %d calls, want (\"ok\", nil) after 3", v, err, calls)
		}

		v, err = retry.DoValue(t.Context(), retry.Policy{MaxAttempts: 2}, func(context.Context) (string, error) {
			return "partial", errBoom
		})
		if v != "" || !errors.Is(err, errBoom) {
			t.Errorf("DoValue = (%q, %v), want (\"\", errBoom)", v, err)
		}
	})
}
