// Package demo holds what the example programs share: running the program
// again as a child process (with internal/childproc), reading its output
// line by line, and killing it with SIGKILL to show a crash.
package demo

import (
	"log"
	"os"
	"os/exec"

	"github.com/durable-go/durable/internal/childproc"
)

// Child is a running copy of this program.
type Child struct {
	Cmd *exec.Cmd
	// Lines delivers the child's stdout a line at a time; it is closed
	// when the output ends.
	Lines <-chan string

	p *childproc.Proc
}

// Start runs this program again with env ("KEY=value") added to its
// environment. Its stderr passes through; a failure to start is fatal.
func Start(env ...string) *Child {
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), env...)
	lines := make(chan string)
	p, err := childproc.Start(cmd, os.Stderr, func(line string) { lines <- line })
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		<-p.Closed()
		close(lines)
	}()
	return &Child{Cmd: cmd, Lines: lines, p: p}
}

// Kill sends SIGKILL, then waits for the process, dropping what is left
// of its output.
func (c *Child) Kill() {
	go c.drain()
	c.p.Kill()
}

// Wait waits for the child to end by itself, dropping output not read.
func (c *Child) Wait() error {
	c.drain()
	return c.p.Err()
}

func (c *Child) drain() {
	for range c.Lines {
	}
}
