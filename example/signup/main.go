// Command signup shows durable waits surviving crashes:
//
//	go run ./example/signup -day=1s
//
// A signup workflow sends a welcome email, then waits until the user
// confirms or three days pass, whichever comes first; without a
// confirmation it sends a reminder and waits again. A day lasts -day.
//
// The program starts itself as a child process that runs the workflow on
// a bbolt journal, and kills it with SIGKILL in the middle of the first
// wait. A day later (no process running meanwhile) a second child resumes
// the run: the wait goes on with the time it had left, not three days
// from the restart. It is killed in turn during the second wait; with no
// child running, the parent sends the confirmation with durable.Send,
// which stores it in the journal; a third child resumes the run, which
// receives the message at once, once.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/demo"
)

const (
	runID        = "signup-bob"
	email        = "bob@example.com"
	waitDays     = 3
	maxReminders = 2
)

// day is how long a day lasts in this demo.
var day = time.Second

// ran records the steps this process executed (not replayed).
var ran = map[string]bool{}

// step runs a durable step that prints what it does when it executes, and
// reports it when it was replayed from the journal instead.
func step(ctx durable.Context, name string, do func() string) error {
	_, err := durable.Step(ctx, name, func(context.Context) (bool, error) {
		ran[name] = true
		say("step %-16s %s", name, do())
		return true, nil
	})
	if err == nil && !ran[name] {
		say("step %-16s replayed from the journal (not executed)", name)
	}
	return err
}

var signup = durable.Define("signup", func(ctx durable.Context, email string) (string, error) {
	start := durable.Now(ctx) // journaled: the same on every replay
	dayOf := func(t time.Time) string { return fmt.Sprintf("day %.1f", float64(t.Sub(start))/float64(day)) }

	if err := step(ctx, "send-welcome", func() string { return "welcome email sent to " + email }); err != nil {
		return "", err
	}
	for wait := 1; ; wait++ {
		timer := durable.NewTimer(ctx, waitDays*day) // its wake-up time is journaled
		// Display only (reading the clock here does not steer the
		// workflow): a wait still to come, or resumed after a restart.
		//durablevet:ignore the clock feeds a message, not a branch of the workflow
		if left := time.Until(timer.At()); left > 0 {
			if waited := waitDays*day - left; waited > day/10 {
				say("wait %d resumed: %.1f of %d days left (until %s)", wait, float64(left)/float64(day), waitDays, dayOf(timer.At()))
			} else {
				say("wait %d: for a confirmation, or %d days (until %s)", wait, waitDays, dayOf(timer.At()))
			}
		}
		confirmed := durable.OnReceive[string]("confirmed")
		i, err := durable.AwaitAny(ctx, confirmed, timer)
		if err != nil {
			return "", err
		}
		if i == 0 { // the message came first
			note, _ := confirmed.Value()
			when := dayOf(durable.Now(ctx))
			if err := step(ctx, "activate-account", func() string {
				return fmt.Sprintf("confirmed on %s (%q): account activated", when, note)
			}); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s confirmed on %s after %d reminder(s)", email, when, wait-1), nil
		}
		if wait > maxReminders {
			if err := step(ctx, "close-signup", func() string { return "no confirmation: signup closed" }); err != nil {
				return "", err
			}
			return email + " never confirmed", nil
		}
		name := fmt.Sprintf("send-reminder-%d", wait)
		if err := step(ctx, name, func() string {
			return fmt.Sprintf("%d days without a confirmation: reminder %d sent to %s", waitDays, wait, email)
		}); err != nil {
			return "", err
		}
	}
})

var who = "parent"

func say(format string, args ...any) {
	fmt.Printf("[%s] %s\n", who, fmt.Sprintf(format, args...))
}

func main() {
	log.SetFlags(0)
	journalPath := flag.String("journal", "", "journal file (default: a new temporary directory)")
	flag.DurationVar(&day, "day", day, "how long a day lasts")
	flag.Parse()

	if child := os.Getenv("SIGNUP_DEMO_CHILD"); child != "" {
		who = "child " + child
		d, err := time.ParseDuration(os.Getenv("SIGNUP_DEMO_DAY"))
		if err != nil {
			log.Fatal(err)
		}
		day = d
		runChild(os.Getenv("SIGNUP_DEMO_JOURNAL"))
		return
	}
	if day <= 0 {
		log.Fatal("-day must be positive")
	}
	path := *journalPath
	if path == "" {
		dir, err := os.MkdirTemp("", "durable-signup-demo-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "journal.db")
	}
	say("journal: %s; a day lasts %v", path, day)
	start := time.Now()
	dayNow := func() string { return fmt.Sprintf("day %.1f", float64(time.Since(start))/float64(day)) }

	// Child 1: kill it a day into the first wait.
	killDuring(1, path, "wait 1: ", dayNow)
	say("%s: no process runs for a day", dayNow())
	time.Sleep(day)

	// Child 2: resumes the first wait; kill it a day into the second.
	killDuring(2, path, "wait 2: ", dayNow)

	// No child runs: the parent stores the confirmation in the journal.
	// Its engine does not have the signup workflow, so it runs nothing.
	e, err := durable.Open(path, &durable.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	if err := durable.Send(context.Background(), e, runID, "confirmed", "bob clicked the link"); err != nil {
		log.Fatal(err)
	}
	if err := e.Close(); err != nil {
		log.Fatal(err)
	}
	say("%s: no child running; durable.Send stored the confirmation in the journal", dayNow())

	// Child 3: resumes the second wait, which the message ends at once.
	say("%s: starting child 3", dayNow())
	child := startChild(3, path)
	for line := range child.Lines {
		fmt.Println(line)
	}
	if err := child.Wait(); err != nil {
		log.Fatalf("child 3: %v", err)
	}
}

// killDuring runs child n and kills it one day after it prints a line
// containing marker.
func killDuring(n int, path, marker string, dayNow func() string) {
	say("%s: starting child %d", dayNow(), n)
	child := startChild(n, path)
	for line := range child.Lines {
		fmt.Println(line)
		if strings.Contains(line, marker) {
			time.Sleep(day)
			say("%s: SIGKILL child %d in the middle of %s", dayNow(), n, strings.TrimSuffix(marker, ": "))
			child.Kill()
			return
		}
	}
	_ = child.Wait()
}

// startChild runs this program again as child n on the journal at path.
func startChild(n int, path string) *demo.Child {
	return demo.Start(fmt.Sprintf("SIGNUP_DEMO_CHILD=%d", n), "SIGNUP_DEMO_JOURNAL="+path, "SIGNUP_DEMO_DAY="+day.String())
}

func runChild(path string) {
	e, err := durable.Open(path, &durable.Config{Workflows: []durable.Definition{signup}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Get(context.Background(), runID); err == nil {
		say("run %s is in the journal: resuming it", runID)
	} else {
		say("starting run %s", runID)
	}
	out, err := durable.Run(context.Background(), e, signup, runID, email)
	if err != nil {
		log.Fatalf("[%s] run failed: %v", who, err)
	}
	say("run %s completed: %s", runID, out)
}
