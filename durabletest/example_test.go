package durabletest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

// exampleT stands in for the *testing.T that a test passes to
// durabletest.New: an Example has none. Its cleanups run at done.
type exampleT struct {
	testing.TB // only the methods below are used
	cleanups   []func()
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Failed() bool                      { return false }
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) { fmt.Printf("error: "+format+"\n", args...) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

var signup = durable.Define("signup", func(ctx durable.Context, email string) (string, error) {
	if _, err := durable.Step(ctx, "welcome", func(context.Context) (string, error) {
		fmt.Println("step: welcome mail to", email)
		return "sent", nil
	}); err != nil {
		return "", err
	}
	confirmed, err := durable.Receive[bool](ctx, "confirmed")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s confirmed: %v", email, confirmed), nil
})

// In a test, pass the test's t; run the test inside synctest.Test and the
// workflow's timers take no real time.
func ExampleNew() {
	t := &exampleT{} // in a test: the *testing.T
	defer t.done()   // in a test: automatic, when the test ends

	env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{signup}})
	env.SendAfter(10*time.Millisecond, "signup-bob", "confirmed", true)
	out, err := durable.Run(context.Background(), env.Engine, signup, "signup-bob", "bob@example.com")
	fmt.Println(out, err)
	// Output:
	// step: welcome mail to bob@example.com
	// bob@example.com confirmed: true <nil>
}

// Restart is a crash and a resume: the run goes on from its journal, and
// the step it had recorded is not run again.
func ExampleEnv_Restart() {
	t := &exampleT{} // in a test: the *testing.T
	defer t.done()

	env := durabletest.New(t, &durable.Config{Workflows: []durable.Definition{signup}})
	ctx := context.Background()
	if _, err := durable.Start(ctx, env.Engine, signup, "signup-ann", "ann@example.com"); err != nil {
		fmt.Println(err)
		return
	}
	for recs, _ := env.Store.Records(ctx, "signup-ann"); len(recs) == 0; recs, _ = env.Store.Records(ctx, "signup-ann") {
		time.Sleep(time.Millisecond) // until the welcome step is recorded
	}

	fmt.Println("restart")
	env.Restart()
	if err := durable.Send(ctx, env.Engine, "signup-ann", "confirmed", true); err != nil {
		fmt.Println(err)
		return
	}
	out, err := durable.Run(ctx, env.Engine, signup, "signup-ann", "ann@example.com") // attaches to the run
	fmt.Println(out, err)
	// Output:
	// step: welcome mail to ann@example.com
	// restart
	// ann@example.com confirmed: true <nil>
}

// A Clock makes time move only when told, in any test (no synctest
// needed): here a 3-day reminder fires when the clock is moved past it.
func ExampleClock() {
	reminder := durable.Define("reminder", func(ctx durable.Context, email string) (string, error) {
		if err := durable.Sleep(ctx, 72*time.Hour); err != nil {
			return "", err
		}
		return "reminded " + email + " on " + durable.Now(ctx).Format(time.DateOnly), nil
	})
	clock := durabletest.NewClock(time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC))
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{reminder}, Clock: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	ctx := context.Background()
	h, err := durable.Start(ctx, e, reminder, "remind-bob", "bob@example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	for info, _ := e.Get(ctx, "remind-bob"); info.WakeAt.IsZero(); info, _ = e.Get(ctx, "remind-bob") {
		time.Sleep(time.Millisecond) // until the sleep is journaled
	}
	info, _ := e.Get(ctx, "remind-bob")
	fmt.Println("sleeping until", info.WakeAt.Format(time.DateTime))

	clock.Advance(24 * time.Hour)
	clock.Advance(-48 * time.Hour) // back: nothing fires
	clock.Set(time.Date(2030, 1, 4, 10, 0, 0, 0, time.UTC))
	out, err := h.Result(ctx)
	fmt.Println(out, err)
	// Output:
	// sleeping until 2030-01-04 09:00:00
	// reminded bob@example.com on 2030-01-04 <nil>
}
