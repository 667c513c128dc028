package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/durable-go/durable/journal/postgres/pgtest"
)

// TestTinyRun runs every figure at tiny sizes, once: the command works
// end to end (CI runs it). It asserts nothing about speed.
func TestTinyRun(t *testing.T) {
	url := pgtest.URL(t)
	var out, errb bytes.Buffer
	code := run([]string{"-url", url, "-reps", "1", "-steps", "5", "-runs", "6", "-run-steps", "2", "-inflight", "3", "-starts", "8", "-start-workers", "4"}, &out, &errb)
	if code != 0 {
		t.Fatalf("durable-pgbench = %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, fig := range []string{"Q1", "Q2", "Q3", "raw pgx"} {
		if !strings.Contains(out.String(), fig) {
			t.Errorf("the report has no %q:\n%s", fig, out.String())
		}
	}
}
