package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

// crashCommand makes the test binary die the way a bbolt check that
// faults does: a fatal error in a goroutine of its own.
const crashCommand = "__crash"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case bboltCheckCommand:
			// check re-executes os.Executable(): the test binary here.
			os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
		case crashCommand:
			fmt.Println("problem: a first line, then a crash")
			go panic("simulated fault in the checker's goroutine")
			time.Sleep(time.Minute)
			os.Exit(0)
		}
	}
	lockTimeout = 100 * time.Millisecond
	// The bbolt check runs in a child process (this binary); with -race,
	// the race runtime would hold each child for a second at exit.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	dir, err := os.MkdirTemp("", "durable-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demoDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// reserveCanary starts the value of the signup workflow's first step;
// with the run's input it makes a string a test can find in the file and
// damage.
const reserveCanary = "PREPARED-CANARY-3d1f7a-the-record-value-to-damage:"

type order struct {
	ID     string
	Amount int
}

var (
	orderWF = durable.Define("order", func(ctx durable.Context, o order) (string, error) {
		res, err := durable.Step(ctx, "reserve", func(context.Context) (string, error) { return "res-" + o.ID, nil })
		if err != nil {
			return "", err
		}
		_, err = durable.Step(ctx, "charge", func(context.Context) (int, error) {
			if o.Amount < 0 {
				return 0, errors.New("card declined")
			}
			return o.Amount, nil
		}, durable.WithRetry(retry.Policy{MaxAttempts: 2, Backoff: backoff.Constant(time.Millisecond)}))
		if err != nil {
			return "", err
		}
		return res + " charged", nil
	})
	batchWF = durable.Define("batch", func(ctx durable.Context, n int) (int, error) {
		out, err := durable.RunChild(ctx, orderWF, ctx.RunID()+"/order-a", order{ID: "a", Amount: n})
		if err != nil {
			return 0, err
		}
		return len(out), nil
	})
	signupWF = durable.Define("signup", func(ctx durable.Context, email string) (string, error) {
		if _, err := durable.Step(ctx, "prepare", func(context.Context) (string, error) { return reserveCanary + email, nil }); err != nil {
			return "", err
		}
		if err := durable.Sleep(ctx, 24*time.Hour); err != nil {
			return "", err
		}
		return durable.Receive[string](ctx, "confirmed")
	})
	legacyWF = durable.Define("legacy", func(ctx durable.Context, in string) (string, error) {
		if _, err := durable.Step(ctx, "v1", func(context.Context) (int, error) { return 1, nil }); err != nil {
			return "", err
		}
		return durable.Receive[string](ctx, "go")
	})
	// legacyV2WF is a change to legacy that breaks its runs' replay.
	legacyV2WF = durable.Define("legacy", func(ctx durable.Context, in string) (string, error) {
		if _, err := durable.Step(ctx, "v2", func(context.Context) (int, error) { return 2, nil }); err != nil {
			return "", err
		}
		return durable.Receive[string](ctx, "go")
	})
)

var (
	demoDir  string
	demoOnce sync.Once
	demoPath string
	demoErr  error
)

// demoJournal returns a copy, in t's temporary directory, of a journal with
// runs of every status: order-1 and order-2 completed, order-3 failed,
// batch-1 completed with child batch-1/order-a, signup-1 running (asleep
// for a day, a message waiting), signup-2 canceled, legacy-1 parked (its
// workflow changed so that its replay diverges).
func demoJournal(t *testing.T) string {
	t.Helper()
	demoOnce.Do(func() { demoPath, demoErr = buildDemo(filepath.Join(demoDir, "demo.db")) })
	if demoErr != nil {
		t.Fatalf("building the demo journal: %v", demoErr)
	}
	data, err := os.ReadFile(demoPath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "app.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func buildDemo(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	cfg := &durable.Config{Workflows: []durable.Definition{orderWF, batchWF, signupWF, legacyWF}, Logger: quiet}
	e, err := durable.Open(path, cfg)
	if err != nil {
		return "", err
	}
	defer func() {
		if e != nil {
			e.Close()
		}
	}()
	for i, amount := range []int{10, 20} {
		if _, err := durable.Run(ctx, e, orderWF, fmt.Sprintf("order-%d", i+1), order{ID: fmt.Sprint(i + 1), Amount: amount}); err != nil {
			return "", err
		}
	}
	if _, err := durable.Run(ctx, e, orderWF, "order-3", order{ID: "3", Amount: -1}); err == nil {
		return "", errors.New("order-3 did not fail")
	}
	if _, err := durable.Run(ctx, e, batchWF, "batch-1", 5); err != nil {
		return "", err
	}
	if _, err := durable.Start(ctx, e, signupWF, "signup-1", "bob@example.com"); err != nil {
		return "", err
	}
	if err := waitFor(ctx, e, "signup-1", func(i durable.RunInfo) bool { return !i.WakeAt.IsZero() }); err != nil {
		return "", err
	}
	if err := durable.Send(ctx, e, "signup-1", "note", "hello"); err != nil {
		return "", err
	}
	if _, err := durable.Start(ctx, e, signupWF, "signup-2", "eve@example.com"); err != nil {
		return "", err
	}
	if err := e.Cancel(ctx, "signup-2"); err != nil {
		return "", err
	}
	if err := waitFor(ctx, e, "signup-2", func(i durable.RunInfo) bool { return i.Status == durable.StatusCanceled }); err != nil {
		return "", err
	}
	if _, err := durable.Start(ctx, e, legacyWF, "legacy-1", "x"); err != nil {
		return "", err
	}
	if err := waitFor(ctx, e, "legacy-1", func(i durable.RunInfo) bool { return i.Waiting == "a message" }); err != nil {
		return "", err
	}
	err = e.Close()
	e = nil
	if err != nil {
		return "", err
	}

	// A new "legacy" that does something else first: legacy-1, loaded
	// by its message, cannot replay, and parks.
	cfg.Workflows = []durable.Definition{orderWF, batchWF, signupWF, legacyV2WF}
	if e, err = durable.Open(path, cfg); err != nil {
		return "", err
	}
	if err := durable.Send(ctx, e, "legacy-1", "go", "now"); err != nil {
		return "", err
	}
	if err := waitFor(ctx, e, "legacy-1", func(i durable.RunInfo) bool { return i.Status == durable.StatusParked }); err != nil {
		return "", err
	}
	err = e.Close()
	e = nil
	return path, err
}

// waitFor polls run id until ok holds.
func waitFor(ctx context.Context, e *durable.Engine, id string, ok func(durable.RunInfo) bool) error {
	for {
		info, err := e.Get(ctx, id)
		if err == nil && ok(info) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("run %q: %v (last: %+v, %v)", id, ctx.Err(), info, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// durableCmd runs the command line args in-process.
func durableCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	t.Logf("$ durable %s  (exit %d)\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

func wantCode(t *testing.T, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("exit status %d, want %d", got, want)
	}
}

func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "none.db")
	cases := []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{nil, exitUsage, "usage: durable [-json] <command>"},
		{[]string{"-h"}, exitOK, "-addr URL"},
		{[]string{"send", "r", "ch", "1"}, exitUsage, "needs -addr URL"},
		{[]string{"watch"}, exitUsage, "needs -addr URL"},
		{[]string{"-addr", "http://localhost:1/durable", "check", path}, exitUsage, "works on a journal FILE"},
		{[]string{"-addr", "localhost:8080", "list"}, exitUsage, "want the URL where the application mounts"},
		{[]string{"-addr"}, exitUsage, "-addr needs a URL"},
		{[]string{"-bogus", "list"}, exitUsage, `unknown flag "-bogus"`},
		{[]string{"version"}, exitOK, "durable "},
		{[]string{"help"}, exitOK, "compact"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"list"}, exitUsage, "missing arguments"},
		{[]string{"list", path, "extra"}, exitUsage, "too many arguments"},
		{[]string{"list", path, "-status", "sleeping"}, exitUsage, `-status "sleeping"`},
		{[]string{"list", path, "-limit", "-1"}, exitUsage, "-limit -1"},
		{[]string{"list", "-bogus", path}, exitUsage, "flag provided but not defined"},
		{[]string{"show", path}, exitUsage, "usage: durable show FILE ID"},
		{[]string{"cancel", path}, exitUsage, "missing arguments"},
		{[]string{"check"}, exitUsage, "usage: durable check FILE"},
		{[]string{"compact", path, "-o"}, exitUsage, "flag needs an argument"},
		{[]string{"list", "-h"}, exitOK, "-status"},
	}
	for _, c := range cases {
		stdout, stderr, code := durableCmd(t, c.args...)
		if code != c.code {
			t.Errorf("durable %q: exit %d, want %d", c.args, code, c.code)
		}
		wantContains(t, fmt.Sprintf("output of durable %q", c.args), stdout+stderr, c.want)
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("a usage error created %s", path)
	}
}

func TestMissingFileNotCreated(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "none.db")
	for _, args := range [][]string{{"list", path}, {"show", path, "x"}, {"cancel", path, "x"}, {"resume", path, "x"}, {"check", path}, {"compact", path}} {
		_, stderr, code := durableCmd(t, args...)
		wantCode(t, code, exitFailure)
		wantContains(t, "stderr", stderr, "no such file")
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("a command created %s", path)
	}
}

func TestNotAJournal(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a journal\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"list", "check"} {
		_, stderr, code := durableCmd(t, cmd, path)
		wantCode(t, code, exitFailure)
		wantContains(t, "stderr", stderr, "is not a durable journal")
	}
}
