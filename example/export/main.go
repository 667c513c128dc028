// Command export shows retries, backoff and rate limits that survive a
// crash, in one command:
//
//	go run ./example/export
//
// A workflow exports 20 records, one durable step each, to an HTTP API
// that misbehaves (the API runs in this process: see server.go). It
// answers 503 Service Unavailable, 429 Too Many Requests with a
// Retry-After, and once it never answers at all. Each export step
//
//   - retries by a policy: up to 5 attempts, backoff 500ms, 1s, 2s, ...
//   - turns a Retry-After into retry.After, so the wait is at least that;
//   - bounds each attempt with durable.WithTimeout(1s);
//   - is bound with durable.WithLimit("api") to a rate of 5 per second
//     shared by every run of the engine;
//   - sends the step's idempotency key, so an attempt whose answer was
//     lost stores nothing twice.
//
// The program starts itself as a child process that runs the workflow on a
// bbolt journal, kills it with SIGKILL one second into the 3s Retry-After
// wait, and starts it again: the new process resumes the run at the same
// attempt and waits only what remained of the wait, journaled before the
// crash.
//
//	go run ./example/export -compare-limits
//
// instead sends 120 exports through a fixed and then an adaptive limit
// (Limit.Adaptive) to an API that answers 429 above a hidden capacity, and
// prints how many 429s each drew (see adaptive.go).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/internal/demo"
	"github.com/durable-go/durable/retry"
)

// Record is what the workflow exports.
type Record struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

func records() []Record {
	names := []string{"Ada", "Brian", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ines", "Jun",
		"Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq"}
	recs := make([]Record, len(names))
	for i, n := range names {
		recs[i] = Record{ID: i + 1, Name: n, Email: strings.ToLower(n) + "@example.com"}
	}
	return recs
}

const (
	runID          = "export-1"
	attemptTimeout = time.Second
)

// policy is the export step's retry policy. Without jitter its waits are
// exact, which the demo's output relies on.
var policy = retry.Policy{
	MaxAttempts: 5,
	Backoff:     backoff.Exponential{Initial: 500 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: backoff.NoJitter},
}

// limits are the engine's shared limits: 5 API calls a second.
var limits = map[string]durable.Limit{"api": {Rate: 5, Burst: 1}}

// sent records the steps this process executed (rather than replayed).
// Only the workflow goroutine touches it: Step runs its function there.
var sent = map[int]bool{}

var export = durable.Define("export", func(ctx durable.Context, recs []Record) (string, error) {
	replayed := 0
	for _, rec := range recs {
		_, err := durable.Step(ctx, fmt.Sprintf("export-%02d", rec.ID), func(ctx context.Context) (string, error) {
			sent[rec.ID] = true
			return exportAttempt(ctx, rec)
		}, durable.WithRetry(policy), durable.WithTimeout(attemptTimeout), durable.WithLimit("api"))
		if err != nil {
			return "", err
		}
		if !sent[rec.ID] {
			replayed++
		}
	}
	return fmt.Sprintf("%d records exported (%d replayed from the journal, %d sent by this process)",
		len(recs), replayed, len(recs)-replayed), nil
})

// exportAttempt is one attempt of a record's export step: it sends the
// record and says how it went.
func exportAttempt(ctx context.Context, rec Record) (string, error) {
	info, _ := durable.StepInfoFrom(ctx)
	status, err := putRecord(ctx, rec, info.IdempotencyKey, info.Attempt)
	if err == nil {
		say("record %02d attempt %d: %s", rec.ID, info.Attempt, status)
		return status, nil
	}
	// The engine calls policy.Next with this error when the step returns,
	// and journals the answer; without jitter, we can say it first.
	if wait, again := policy.Next(info.Attempt, err); again {
		say("record %02d attempt %d: %v; next attempt in %v", rec.ID, info.Attempt, err, wait)
	} else {
		say("record %02d attempt %d: %v; giving up", rec.ID, info.Attempt, err)
	}
	return "", err
}

// api is this process's instance of the simulated API.
var api *flakyAPI

// putRecord sends rec to the API and classifies the answer for the retry
// policy: a Retry-After becomes retry.After, a 4xx retry.Permanent.
func putRecord(ctx context.Context, rec Record, key string, attempt int) (string, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return "", retry.Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/records/%d", api.URL, rec.ID), bytes.NewReader(body))
	if err != nil {
		return "", retry.Permanent(err)
	}
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("X-Demo-Attempt", strconv.Itoa(attempt)) // drives the API's script
	resp, err := api.Client().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("no answer within %v: %w", attemptTimeout, ctx.Err())
		}
		return "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch code := resp.StatusCode; {
	case code == http.StatusOK || code == http.StatusCreated:
		return fmt.Sprintf("%s, %s", resp.Status, strings.TrimSpace(string(msg))), nil
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		err := errors.New(resp.Status)
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil {
			d := time.Duration(secs) * time.Second
			return "", retry.After(fmt.Errorf("%s, Retry-After: %v", resp.Status, d), d)
		}
		return "", err
	case code >= 400 && code < 500:
		return "", retry.Permanent(fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg))))
	}
	return "", errors.New(resp.Status)
}

// Output: every line says who prints it and when, on a timeline shared by
// the parent and its children.
var (
	who = "parent"
	t0  = time.Now()
)

func stamp(t time.Time) string { return fmt.Sprintf("+%.2fs", t.Sub(t0).Seconds()) }

func say(format string, args ...any) {
	fmt.Printf("%-9s %7s  %s\n", "["+who+"]", stamp(time.Now()), fmt.Sprintf(format, args...))
}

func main() {
	log.SetFlags(0)
	dirFlag := flag.String("dir", "", "directory for the journal and the API's database (default: a new temporary directory)")
	compare := flag.Bool("compare-limits", false, "instead of the crash demo, compare a fixed and an adaptive limit against an API that answers 429 above a hidden capacity")
	flag.Parse()

	if child := os.Getenv("EXPORT_DEMO_CHILD"); child != "" {
		who = "child " + child
		ns, err := strconv.ParseInt(os.Getenv("EXPORT_DEMO_T0"), 10, 64)
		if err != nil {
			log.Fatal("EXPORT_DEMO_T0: ", err)
		}
		t0 = time.Unix(0, ns)
		runChild(os.Getenv("EXPORT_DEMO_DIR"))
		return
	}

	dir := *dirFlag
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "durable-export-demo-"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	if *compare {
		if err := compareLimits(dir); err != nil {
			log.Fatal(err)
		}
		return
	}
	say("journal and API database in %s", dir)

	// First child: kill it during the first long backoff wait.
	child := startChild(1, dir)
	killed := false
	for line := range child.Lines {
		fmt.Println(line)
		if i := strings.Index(line, "next attempt in "); i >= 0 {
			if wait, err := time.ParseDuration(line[i+len("next attempt in "):]); err == nil && wait >= 2*time.Second {
				time.Sleep(time.Second)
				say("SIGKILL child 1, one second into its %v wait", wait)
				child.Kill()
				killed = true
				break
			}
		}
	}
	if !killed {
		log.Fatalf("child 1 ended (%v) before the wait the demo kills it in", child.Wait())
	}

	// Second child: a fresh process resumes the run from the journal.
	time.Sleep(500 * time.Millisecond)
	say("starting child 2 on the same journal")
	child = startChild(2, dir)
	for line := range child.Lines {
		fmt.Println(line)
	}
	if err := child.Wait(); err != nil {
		log.Fatalf("child 2: %v", err)
	}
}

// startChild runs this program again as child n working in dir.
func startChild(n int, dir string) *demo.Child {
	return demo.Start(fmt.Sprintf("EXPORT_DEMO_CHILD=%d", n), "EXPORT_DEMO_DIR="+dir, fmt.Sprintf("EXPORT_DEMO_T0=%d", t0.UnixNano()))
}

func runChild(dir string) {
	dbPath := filepath.Join(dir, "api.db")
	var err error
	if api, err = startAPI(dbPath); err != nil {
		log.Fatal(err)
	}
	defer api.Close()
	e, err := durable.Open(filepath.Join(dir, "journal.db"), &durable.Config{Workflows: []durable.Definition{export}, Limits: limits})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close() // before api.Close: deferred calls run last first

	recs := records()
	if info, err := e.Get(context.Background(), runID); err == nil {
		say("found run %s in the journal (%s): resuming it", runID, info.Status)
		if !info.WakeAt.IsZero() {
			say("its next retry was journaled before the crash, due at %s: waiting only the remaining %v",
				stamp(info.WakeAt), max(time.Until(info.WakeAt), 0).Round(10*time.Millisecond))
		}
	} else {
		say("starting run %s: %d records, at most %v calls a second, %v per attempt", runID, len(recs), limits["api"].Rate, attemptTimeout)
	}
	out, err := durable.Run(context.Background(), e, export, runID, recs)
	if err != nil {
		log.Fatalf("[%s] run %s failed: %v", who, runID, err)
	}
	say("run %s completed: %s", runID, out)

	keys, err := readDB(dbPath)
	if err != nil {
		log.Fatal(err)
	}
	count := map[string]int{}
	var twice []string
	for _, k := range keys {
		if count[k]++; count[k] == 2 {
			twice = append(twice, k)
		}
	}
	if len(twice) > 0 {
		say("the API stored %d records; stored twice: %v", len(count), twice)
		os.Exit(1)
	}
	say("the API stored %d records, none twice", len(count))
}
