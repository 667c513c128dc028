package a

import (
	"context"
	crand "crypto/rand"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/durable-go/durable"
)

var (
	counter int
	mu      sync.Mutex
	cache   = map[string]int{}
)

// One case per rule, in a workflow given as a function literal.
var rules = durable.Define("rules", func(ctx durable.Context, in map[string]int) (int, error) {
	_ = time.Now()                                    // want `time.Now in workflow code reads the clock, which differs on replay; use durable.Now\(ctx\)`
	_ = time.Since(time.Time{})                       // want `time.Since .*use durable.Now\(ctx\)`
	time.Sleep(time.Second)                           // want `time.Sleep in workflow code does not survive a restart; use durable.Sleep\(ctx, d\)`
	<-time.After(time.Second)                         // want `time.After .*use durable.Sleep, or durable.NewTimer with durable.AwaitAny` `channel receive in workflow code: .*use durable.Receive`
	t := time.NewTimer(time.Second)                   // want `time.NewTimer .*durable.NewTimer`
	t.Stop()                                          // want `time.\(Timer\).Stop .*durable.NewTimer`
	cctx, cancel := context.WithCancel(ctx)           // want `context.WithCancel in workflow code makes a context that durable operations do not take.*use durable.WithCancel\(ctx\)`
	_, stop := context.WithTimeout(cctx, time.Second) // want `context.WithTimeout in workflow code is a timer outside the journal; use durable.WithCancel\(ctx\) with durable.NewTimer`
	_ = context.WithoutCancel(ctx)                    // want `context.WithoutCancel .*use durable.WithoutCancel\(ctx\)`
	stop()
	cancel()
	_ = rand.IntN(10)           // want `math/rand/v2.IntN in workflow code draws a different number on replay; draw it inside a durable.Step`
	_, _ = crand.Read(nil)      // want `crypto/rand.Read .*inside a durable.Step`
	_ = os.Getenv("FLAG")       // want `os.Getenv in workflow code may read another value on replay; read configuration inside a durable.Step`
	_, _ = os.ReadFile("x")     // want `os.ReadFile in workflow code does I/O outside the journal; do it inside a durable.Step`
	_, _ = http.Get("http://x") // want `net/http.Get in workflow code does I/O .*inside a durable.Step`
	go func() {}()              // want `go statement in workflow code: .*use durable.Go`
	ch := make(chan int, 1)
	ch <- 1  // want `channel send in workflow code`
	select { // want `select in workflow code: .*durable.AwaitAny`
	case v := <-ch:
		_ = v
	default:
	}
	close(ch)      // want `close of a channel in workflow code`
	for range ch { // want `range over a channel in workflow code: .*durable.Receive`
	}
	mu.Lock()   // want `sync.\(Mutex\).Lock in workflow code: .*use durable.Go with Future.Get or durable.AwaitAll`
	mu.Unlock() // want `sync.\(Mutex\).Unlock`
	var wg sync.WaitGroup
	wg.Wait()           // want `sync.\(WaitGroup\).Wait`
	for k := range in { // want `range over a map makes durable calls in the map's random order.*slices.Sorted\(maps.Keys\(m\)\)`
		durable.Step(ctx, k, func(context.Context) (int, error) { return 0, nil })
	}
	sum := 0
	for _, v := range in { // no durable call in the loop: fine
		sum += v
	}
	for _, k := range slices.Sorted(maps.Keys(in)) { // sorted: fine
		durable.Step(ctx, k, func(context.Context) (int, error) { return 0, nil })
	}
	counter++        // want `workflow code writes package variable counter: .*return it from a durable.Step`
	cache["x"] = 1   // want `workflow code writes package variable cache`
	local := counter // reading is not reported
	//durablevet:ignore for a log line only
	_ = time.Now()
	_ = time.Now() //durablevet:ignore on the same line
	local++        // a local variable: fine
	return helper(ctx) + local + sum, nil
})

// helper is workflow code: the workflow calls it.
func helper(ctx durable.Context) int {
	_ = durable.Now(ctx)          // the durable alternative: fine
	return int(time.Now().Unix()) // want `time.Now in workflow code`
}

// notWorkflow is never called from a workflow: not checked.
func notWorkflow() int {
	counter++
	return int(time.Now().Unix())
}

// Step bodies may do everything: no report below.
var steps = durable.Define("steps", named)

func named(ctx durable.Context, _ int) (string, error) {
	v, err := durable.Step(ctx, "io", func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		counter++
		if os.Getenv("X") != "" {
			time.Sleep(time.Millisecond)
		}
		go func() {}()
		ch := make(chan int, 1)
		ch <- rand.IntN(3)
		resp, err := http.Get("http://x")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		return time.Now().String(), nil
	})
	if err != nil {
		return "", err
	}
	f := durable.Go(ctx, "bg", func(context.Context) (int, error) { return rand.IntN(9), nil })
	saga := durable.NewSaga(ctx)
	saga.Add("undo", func(context.Context) error { _, err := os.ReadFile("x"); return err })
	n, _ := f.Get(ctx)
	_ = wrapped(ctx, func(context.Context) (int, error) { return int(time.Now().Unix()), nil }) // own wrapper of Step
	if durable.Version(ctx, "change", -1, 1) >= 1 {
		_ = durable.Sleep(ctx, time.Hour)
	}
	return v + string(rune(n)), nil
}

// wrapped is a user's wrapper around Step.
func wrapped(ctx durable.Context, fn func(context.Context) (int, error)) int {
	v, _ := durable.Step(ctx, "wrapped", fn)
	return v
}

var _, _ = rules, steps
var _ = notWorkflow
