package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/durable-go/durable/journal/postgres/pgtest"
)

// TestMain makes the test binary a Q4 worker when the bench runs it as one.
func TestMain(m *testing.M) {
	if c := os.Getenv(workerEnv); c != "" {
		os.Exit(worker(c, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestTinyRun runs every figure at tiny sizes, once: the command works
// end to end (CI runs it). It asserts nothing about speed. The raw pgx
// baselines do not retry: when the server goes away meanwhile, the run is
// repeated, up to 3 times. (Tests that restart a server use one of their
// own, pgtest.Private, so this one should not see it go.)
func TestTinyRun(t *testing.T) {
	url := pgtest.URL(t)
	var out, errb bytes.Buffer
	for attempt := 1; ; attempt++ {
		out.Reset()
		errb.Reset()
		code := run([]string{"-url", url, "-reps", "1", "-steps", "5", "-runs", "6", "-run-steps", "2", "-inflight", "3", "-starts", "8", "-start-workers", "4", "-fleet", "2"}, &out, &errb)
		if code == 0 {
			break
		}
		if attempt < 3 && serverWentAway(errb.String()) {
			t.Logf("attempt %d failed while the server restarted; again:\n%s", attempt, errb.String())
			continue
		}
		t.Fatalf("durable-pgbench = %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, fig := range []string{"Q1", "Q2", "Q3", "Q4", "Q5", "raw pgx"} {
		if !strings.Contains(out.String(), fig) {
			t.Errorf("the report has no %q:\n%s", fig, out.String())
		}
	}
}

// serverWentAway reports whether the log shows a connection lost to a
// server restart.
func serverWentAway(log string) bool {
	for _, s := range []string{"57P01", "57P03", "connection refused", "unexpected EOF", "connection reset", "conn closed", "terminating connection"} {
		if strings.Contains(log, s) {
			return true
		}
	}
	return false
}
