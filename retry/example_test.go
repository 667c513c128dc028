package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

func ExamplePolicy_Next() {
	p := retry.Policy{
		MaxAttempts: 4,
		Backoff:     backoff.Exponential{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: backoff.NoJitter},
	}
	errTimeout := errors.New("upstream timeout")
	for attempt := 1; attempt <= 4; attempt++ {
		delay, ok := p.Next(attempt, errTimeout)
		fmt.Printf("after attempt %d: retry=%v wait=%v\n", attempt, ok, delay)
	}

	// A server's Retry-After hint lengthens the wait.
	delay, ok := p.Next(1, retry.After(errTimeout, 5*time.Second))
	fmt.Printf("with a 5s hint: retry=%v wait=%v\n", ok, delay)

	// A permanent error is never retried.
	_, ok = p.Next(1, retry.Permanent(errors.New("invalid card number")))
	fmt.Printf("permanent: retry=%v\n", ok)
	// Output:
	// after attempt 1: retry=true wait=100ms
	// after attempt 2: retry=true wait=200ms
	// after attempt 3: retry=true wait=400ms
	// after attempt 4: retry=false wait=0s
	// with a 5s hint: retry=true wait=5s
	// permanent: retry=false
}

func ExampleDo() {
	p := retry.Policy{MaxAttempts: 5, Backoff: backoff.Constant(time.Millisecond)}
	calls := 0
	err := retry.Do(context.Background(), p, func(ctx context.Context) error {
		calls++
		if calls < 3 {
			return fmt.Errorf("attempt %d: connection refused", calls)
		}
		return nil
	})
	fmt.Println(calls, err)

	err = retry.Do(context.Background(), p, func(ctx context.Context) error {
		return retry.Permanent(errors.New("404 not found"))
	})
	fmt.Println(err)
	// Output:
	// 3 <nil>
	// retry: gave up after 1 attempt: 404 not found
}

func ExampleDoValue() {
	p := retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Millisecond)}
	n, err := retry.DoValue(context.Background(), p, func(ctx context.Context) (int, error) {
		return 0, errors.New("busy")
	})
	fmt.Println(n, err)
	// Output: 0 retry: gave up after 2 attempts: busy
}
