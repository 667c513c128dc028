// Command crash shows durable execution surviving a crash, in one
// command:
//
//	go run ./example/crash
//
// It starts itself as a child process that runs an order workflow of six
// steps on a bbolt journal, kills the child with SIGKILL in the middle of
// a step, then starts it again: the new process resumes the run from the
// journal. Steps recorded before the kill are replayed (not executed
// again); the interrupted step runs again; the rest run once.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/internal/demo"
)

// The workflow: six steps, each a few hundred milliseconds of "work".
var steps = []string{"reserve-stock", "charge-card", "create-invoice", "book-courier", "send-email", "close-order"}

// ran is set by a step function when it executes (not when replayed).
var ran = map[string]bool{}

var order = durable.Define("order", func(ctx durable.Context, id string) (string, error) {
	var receipt []string
	for i, name := range steps {
		out, err := durable.Step(ctx, name, func(ctx context.Context) (string, error) {
			ran[name] = true
			say("step %d %-15s executing...", i+1, name)
			select {
			case <-time.After(400 * time.Millisecond): // the work
			case <-ctx.Done():
				return "", ctx.Err()
			}
			return fmt.Sprintf("%s:ok", name), nil
		})
		if err != nil {
			return "", err
		}
		how := "replayed from the journal (not executed)"
		if ran[name] {
			how = "executed and recorded"
		}
		say("step %d %-15s %s", i+1, name, how)
		receipt = append(receipt, out)
	}
	return strings.Join(receipt, " "), nil
})

var who = "parent"

func say(format string, args ...any) {
	fmt.Printf("[%s] %s\n", who, fmt.Sprintf(format, args...))
}

func main() {
	log.SetFlags(0)
	journal := flag.String("journal", "", "journal file (default: a new temporary directory)")
	killAt := flag.Int("kill-at", 3, "kill the first child during this step (1-6)")
	flag.Parse()

	if child := os.Getenv("CRASH_DEMO_CHILD"); child != "" {
		who = "child " + child
		runChild(os.Getenv("CRASH_DEMO_JOURNAL"))
		return
	}
	path := *journal
	if path == "" {
		dir, err := os.MkdirTemp("", "durable-crash-demo-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		path = filepath.Join(dir, "journal.db")
	}
	say("journal: %s", path)
	if *killAt < 1 || *killAt > len(steps) {
		log.Fatalf("-kill-at must be 1 to %d", len(steps))
	}

	// First child: kill it while step killAt is executing.
	victim := fmt.Sprintf("step %d ", *killAt)
	child := startChild(1, path)
	for line := range child.Lines {
		fmt.Println(line)
		if strings.Contains(line, victim) && strings.HasSuffix(line, "executing...") {
			time.Sleep(150 * time.Millisecond) // well inside the step
			say("SIGKILL child 1 in the middle of step %d (%s)", *killAt, steps[*killAt-1])
			child.Kill()
			break
		}
	}

	// Second child: a fresh process resumes the run from the journal.
	say("starting child 2 on the same journal")
	child = startChild(2, path)
	for line := range child.Lines {
		fmt.Println(line)
	}
	if err := child.Wait(); err != nil {
		log.Fatalf("child 2: %v", err)
	}
}

// startChild runs this program again as child n on the journal at path.
func startChild(n int, path string) *demo.Child {
	return demo.Start(fmt.Sprintf("CRASH_DEMO_CHILD=%d", n), "CRASH_DEMO_JOURNAL="+path)
}

func runChild(path string) {
	e, err := durable.Open(path, &durable.Config{Workflows: []durable.Definition{order}})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	info, err := e.Get(context.Background(), "order-42")
	if err == nil {
		say("found run order-42 in the journal (%s): resuming it", info.Status)
	} else {
		say("starting run order-42")
	}
	out, err := durable.Run(context.Background(), e, order, "order-42", "42")
	if err != nil {
		log.Fatalf("[%s] run failed: %v", who, err)
	}
	say("run order-42 completed: %s", out)
}
