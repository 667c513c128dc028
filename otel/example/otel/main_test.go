package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestMain runs a worker when the test binary is started as one (the
// example re-executes its own binary).
func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		worker(role == "1")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestExample runs the example, SIGKILL included, and checks that it
// prints one trace that spans both workers, with the resume.
func TestExample(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two processes for a few seconds")
	}
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("example: %v\n%s", err, out.String())
	}
	s := out.String()
	if !strings.Contains(s, "worker 2: run order-7 finished: shipped with invoice-o-7.pdf") {
		t.Errorf("worker 2 did not finish the run:\n%s", s)
	}
	_, tree, _ := strings.Cut(s, "as one tree")
	for _, want := range []string{
		"POST /orders [worker 1]",
		"· resumed reason=recovery position=2 records=3",
		"durable.step charge-card run=order-7 attempt=1 [worker 1] ERROR \"payment gateway timeout\"",
		"durable.step ship run=order-7 attempt=1 [worker 2]",
		"durable.step render-pdf run=order-7/3 attempt=1 [worker 2]",
		"was never exported: its process was killed",
	} {
		if !strings.Contains(tree, want) {
			t.Errorf("the output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(tree, "\ntrace "); n != 1 {
		t.Errorf("the tree shows %d traces, want 1:\n%s", n, s)
	}
}
