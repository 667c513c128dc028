package backoff_test

import (
	"fmt"
	"time"

	"github.com/durable-go/durable/backoff"
)

func ExampleExponential() {
	b := backoff.Exponential{
		Initial:    100 * time.Millisecond,
		Max:        time.Second,
		Multiplier: 2,
		Jitter:     backoff.NoJitter,
	}
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Printf("after attempt %d: wait %v\n", attempt, b.Delay(attempt))
	}
	// Output:
	// after attempt 1: wait 100ms
	// after attempt 2: wait 200ms
	// after attempt 3: wait 400ms
	// after attempt 4: wait 800ms
	// after attempt 5: wait 1s
}

// The zero value is usable: it doubles from one second up to a minute.
func ExampleExponential_zero() {
	var b backoff.Exponential
	for _, attempt := range []int{1, 2, 6, 7, 1000} {
		fmt.Println(attempt, b.Delay(attempt))
	}
	// Output:
	// 1 1s
	// 2 2s
	// 6 32s
	// 7 1m0s
	// 1000 1m0s
}

// An injected Rand makes jitter deterministic, for tests.
func ExampleExponential_jitter() {
	for _, j := range []backoff.Jitter{backoff.NoJitter, backoff.FullJitter, backoff.EqualJitter} {
		b := backoff.Exponential{Initial: 8 * time.Second, Jitter: j, Rand: func() float64 { return 0.25 }}
		fmt.Printf("%-11v %v\n", j, b.Delay(1))
	}
	// Output:
	// NoJitter    8s
	// FullJitter  2s
	// EqualJitter 5s
}

func ExampleConstant() {
	b := backoff.Constant(500 * time.Millisecond)
	fmt.Println(b.Delay(1), b.Delay(10))
	// Output: 500ms 500ms
}
