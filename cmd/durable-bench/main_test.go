package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as P6's child process, as the
// command re-executes itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == childFlag {
		os.Exit(memoryChild(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// tiny are the smallest sizes that still exercise every figure.
var tiny = []string{
	"-quick",
	"-steps", "10",
	"-runs", "8", "-run-steps", "2", "-inflight", "4",
	"-starts", "20", "-start-workers", "4",
	"-recover-runs", "8", "-recover-steps", "2",
	"-cost-steps", "200",
	"-waiting", "20",
	"-bytes-runs", "4", "-bytes-steps", "5",
	"-fsyncs", "3",
}

// TestRunQuick runs the whole command at tiny sizes: it checks that every
// figure runs and prints its rows, never how fast anything is.
func TestRunQuick(t *testing.T) {
	dir := t.TempDir()
	args := append([]string{"-dir", dir, "-cpuprofile", dir + "/cpu", "-memprofile", dir + "/mem"}, tiny...)
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	report := out.String()
	for _, want := range []string{"machine:", "fsync", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "targets met:"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "ERROR") {
		t.Errorf("a figure failed:\n%s\nstderr:\n%s", report, &errOut)
	}
	for _, fig := range []string{"P1", "P5", "P6", "P7"} {
		for _, prefix := range []string{"cpu", "mem"} {
			name := profileName(dir+"/"+prefix, fig)
			if fi, err := os.Stat(name); err != nil || fi.Size() == 0 {
				t.Errorf("profile %s: %v", name, err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "durable-bench-") {
			t.Errorf("temporary directory %s left behind", e.Name())
		}
	}
}

func TestOnly(t *testing.T) {
	dir := t.TempDir()
	args := append([]string{"-dir", dir, "-only", "p5,P1"}, tiny...)
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d\nstderr:\n%s", code, &errOut)
	}
	report := out.String()
	if !strings.Contains(report, "P1 ") || !strings.Contains(report, "P5 ") || strings.Contains(report, "P2 ") {
		t.Errorf("-only p5,P1 ran other figures:\n%s", report)
	}
}

func TestFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-steps", "7"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.steps != 7 || c.runs != 300 || c.reps != 1 {
		t.Errorf("-quick -steps 7: steps %d, runs %d, reps %d; want 7, 300 (quick default), 1", c.steps, c.runs, c.reps)
	}
	c, err = parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.steps != 1000 || c.reps != 3 || c.bytesRuns*c.bytesSteps != 1_000_000 {
		t.Errorf("defaults: steps %d, reps %d, P7 steps %d; want 1000, 3, 1,000,000", c.steps, c.reps, c.bytesRuns*c.bytesSteps)
	}
	for _, bad := range [][]string{{"-reps", "0"}, {"-steps", "0"}, {"extra"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
	if _, err := selectFigures("P1,P9"); err == nil {
		t.Error("selectFigures(P1,P9) succeeded")
	}
}

func TestNum(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{1234567, "1,234,567"},
		{-1234, "-1,234"},
		{999, "999"},
		{12.34, "12.3"},
		{1.234, "1.23"},
		{0.01234, "0.012"},
	} {
		if got := num(c.v); got != c.want {
			t.Errorf("num(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}
