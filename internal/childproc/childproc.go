// Package childproc runs a child process whose stdout is read line by line
// and which can be killed with SIGKILL: the one way the crash tests
// (internal/crashtest), the example programs (internal/demo) and the
// torture harness (internal/torture) run a process they may kill.
package childproc

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a running child. Its methods are safe for concurrent use.
type Proc struct {
	Cmd *exec.Cmd

	mu     sync.Mutex
	cond   *sync.Cond
	lines  []string
	eof    bool
	closed chan struct{} // closed when stdout ended
	done   chan struct{} // closed when the child exited and stdout ended
	err    error         // Wait's, once done is closed
}

// Start starts cmd with its stderr going to stderr (nil: discarded) and
// its stdout read a line at a time: each line is kept (Lines, WaitFor)
// and, if onLine is not nil, passed to it, in order, on the reading
// goroutine.
func Start(cmd *exec.Cmd, stderr io.Writer, onLine func(string)) (*Proc, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, closed: make(chan struct{}), done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.cond.Broadcast()
			p.mu.Unlock()
			if onLine != nil {
				onLine(line)
			}
		}
		_, _ = io.Copy(io.Discard, out)
		p.mu.Lock()
		p.eof = true
		p.cond.Broadcast()
		p.mu.Unlock()
		close(p.closed)
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Lines returns the stdout lines read so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Output returns the stdout lines read so far, joined.
func (p *Proc) Output() string { return strings.Join(p.Lines(), "\n") }

// WaitFor waits until a stdout line contains substr and returns it; an
// error if the output ends first or timeout passes.
func (p *Proc) WaitFor(substr string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; ; {
		for ; i < len(p.lines); i++ {
			if strings.Contains(p.lines[i], substr) {
				return p.lines[i], nil
			}
		}
		if p.eof {
			return "", fmt.Errorf("child output ended without %q; output:\n%s", substr, strings.Join(p.lines, "\n"))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %q from the child within %v; output:\n%s", substr, timeout, strings.Join(p.lines, "\n"))
		}
		p.cond.Wait()
	}
}

// Closed is closed when the child's stdout has ended.
func (p *Proc) Closed() <-chan struct{} { return p.closed }

// Done is closed when the child has exited and its stdout is read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the child's exit error (nil for status 0), once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Exited reports whether Done is closed.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL, waits until the child is gone, and reports whether
// the signal ended it (false: it had exited by itself).
func (p *Proc) Kill() bool {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}
