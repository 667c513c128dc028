// Package demo holds what the example programs share: running the program
// again as a child process, reading its output line by line, and killing
// it with SIGKILL to show a crash.
package demo

import (
	"bufio"
	"io"
	"log"
	"os"
	"os/exec"
	"syscall"
)

// Child is a running copy of this program.
type Child struct {
	Cmd *exec.Cmd
	// Lines delivers the child's stdout a line at a time; it is closed
	// when the output ends.
	Lines <-chan string
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
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	return &Child{Cmd: cmd, Lines: lines}
}

// Kill sends SIGKILL, then waits for the process, dropping what is left
// of its output.
func (c *Child) Kill() {
	if err := c.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		log.Printf("kill: %v", err)
	}
	c.drain()
	_ = c.Cmd.Wait()
}

// Wait waits for the child to end by itself, dropping output not read.
func (c *Child) Wait() error {
	c.drain()
	return c.Cmd.Wait()
}

func (c *Child) drain() {
	for range c.Lines {
	}
}
