// Package crashtest runs real crashes in tests: the test binary starts
// itself again as a child process that does the work, and the parent kills
// it with SIGKILL at a moment it chooses. A side-effect log, fsynced line
// by line, records what the child did, so the parent can check what ran
// how many times across kills.
//
// In the test package:
//
//	func TestCrashChild(t *testing.T) {
//		if crashtest.Role() == "" {
//			t.Skip("run as a child by the crash tests")
//		}
//		... do the child's work, reading crashtest.Env("JOURNAL") ...
//	}
//
//	func TestCrash(t *testing.T) {
//		p := crashtest.Start(t, "TestCrashChild", "worker", map[string]string{"JOURNAL": path})
//		p.WaitFor(t, "step 3 running", 10*time.Second)
//		p.Kill(t)
//	}
package crashtest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durable-go/durable/internal/childproc"
)

const envRole = "DURABLE_CRASHTEST_ROLE"
const envPrefix = "DURABLE_CRASHTEST_"

// Role returns the role the parent gave this process, or "" in a normal
// test run.
func Role() string { return os.Getenv(envRole) }

// Env returns the value the parent passed for key.
func Env(key string) string { return os.Getenv(envPrefix + key) }

// Proc is a running child: a childproc.Proc with test-failing waits.
type Proc struct {
	*childproc.Proc
}

// Start runs the test binary's test function testName as a child with the
// given role and environment (read with Env). The child's stdout lines are
// collected (Lines, WaitFor); its stderr goes to the test log on failure.
func Start(t testing.TB, testName, role string, env map[string]string) *Proc {
	t.Helper()
	var stderr strings.Builder
	cp, err := childproc.Start(Command(testName, role, env), &stderr, nil)
	if err != nil {
		t.Fatalf("crashtest: start child: %v", err)
	}
	t.Cleanup(func() {
		cp.Kill()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child %s stderr:\n%s", role, stderr.String())
		}
	})
	return &Proc{cp}
}

// Command returns the command that Start runs, not started: the test
// binary running only testName, with the role and environment (read with
// Role and Env). Use it to manage the child yourself (a harness that is
// shared with a program outside tests, say).
func Command(testName, role string, env map[string]string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+testName+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envRole+"="+role)
	for k, v := range env {
		cmd.Env = append(cmd.Env, envPrefix+k+"="+v)
	}
	return cmd
}

// WaitFor waits until a stdout line contains substr and returns it. It
// fails the test if the child's output ends first or after timeout.
func (p *Proc) WaitFor(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	line, err := p.Proc.WaitFor(substr, timeout)
	if err != nil {
		t.Fatalf("crashtest: %v", err)
	}
	return line
}

// Kill sends SIGKILL and waits for the child to be gone.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	p.Proc.Kill()
}

// Wait waits for the child to exit by itself and returns its error (nil
// for exit status 0), failing the test after timeout.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.Done():
		return p.Err()
	case <-time.After(timeout):
		t.Fatalf("crashtest: child did not exit within %v; output:\n%s", timeout, p.Output())
		return nil
	}
}

// Log is an append-only side-effect log: one line per effect, fsynced
// before Append returns, so it survives a SIGKILL of the process that
// wrote it.
type Log struct {
	mu sync.Mutex
	f  *os.File
}

// OpenLog opens (creating) the log at path for appending.
func OpenLog(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	return &Log{f: f}, nil
}

// Append writes one line (format, args) and fsyncs it.
func (l *Log) Append(format string, args ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := fmt.Fprintf(l.f, format+"\n", args...); err != nil {
		return err
	}
	return l.f.Sync()
}

// Close closes the log.
func (l *Log) Close() error { return l.f.Close() }

// Count reads the log at path and returns how many times each line
// appears. A torn last line (the process died mid-write) is ignored.
func Count(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return map[string]int{}, nil
		}
		return nil, err
	}
	counts := map[string]int{}
	text := string(b)
	if i := strings.LastIndexByte(text, '\n'); i < len(text)-1 {
		text = text[:i+1] // drop a torn tail
	}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line != "" {
			counts[line]++
		}
	}
	return counts, nil
}
