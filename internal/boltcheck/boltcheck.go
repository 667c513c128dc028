// Package boltcheck runs bbolt's consistency check of a journal file in a
// child process, and is that child. bbolt's checker runs in a goroutine of
// its own, where a memory fault on a damaged file is not contained and
// kills the process: in a child, that death is a finding, not a crash of
// the caller. `durable check` and the torture tests both use it.
//
// The child reports on its stdout one "problem: ..." line per problem (at
// most MaxProblems), then "done N" with the number of problems, or one
// "cannot open: ..." line. A child that exits without either has crashed.
package boltcheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// MaxProblems bounds the problems a child reports one by one.
const MaxProblems = 20

// Child is the child's side: bbolt's check of the file at path, opened
// read-only (waiting up to lockTimeout for a writer's lock), reported on
// w. It returns the process's exit status: 0 if the check ran to its end
// (problems or not), 1 if the file could not be opened.
func Child(path string, lockTimeout time.Duration, w io.Writer) int {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		fmt.Fprintf(w, "cannot open: %v\n", err)
		return 1
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check(bolt.WithKVStringer(kvStringer{})) {
			n++
			if n <= MaxProblems {
				fmt.Fprintf(w, "problem: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(w, "cannot open: %v\n", err)
		return 1
	}
	fmt.Fprintf(w, "done %d\n", n)
	return 0
}

// Result is what a child's check said.
type Result struct {
	Count    int      // problems found
	Problems []string // the first of them (MaxProblems at most)
	Crashed  bool     // the child died without finishing
	Detail   string   // how it died
	Err      error    // it could not run, or could not open the file
}

// Run starts cmd, a process that runs Child, waits for it at most timeout
// (or until ctx is done) and reads its report.
func Run(ctx context.Context, cmd *exec.Cmd, timeout time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return Result{Err: err}
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-waited
		return Result{Err: fmt.Errorf("no result within %v", timeout)}
	}

	var res Result
	done := false
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "problem: "):
			res.Problems = append(res.Problems, strings.TrimPrefix(line, "problem: "))
		case strings.HasPrefix(line, "cannot open: "):
			res.Err = errors.New(strings.TrimPrefix(line, "cannot open: "))
			return res
		case strings.HasPrefix(line, "done "):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "done "))
			done = err == nil
			res.Count = n
		}
	}
	if !done || werr != nil {
		res.Crashed = true
		res.Detail = "the checker died"
		if werr != nil {
			res.Detail += ": " + werr.Error()
		}
		if msg := crashMessage(stderr.String()); msg != "" {
			res.Detail += ": " + msg
		}
	}
	return res
}

// crashMessage picks the reason out of a Go crash report: its first line.
func crashMessage(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			if len(line) > 200 {
				line = line[:200] + "…"
			}
			return line
		}
	}
	return ""
}

// kvStringer shows keys as text when they are, values by their size
// (they are binary).
type kvStringer struct{}

func (kvStringer) KeyToString(k []byte) string {
	if utf8.Valid(k) && !bytes.ContainsFunc(k, func(r rune) bool { return r < ' ' }) {
		return strconv.Quote(string(k))
	}
	return fmt.Sprintf("%x", k)
}

func (kvStringer) ValueToString(v []byte) string { return fmt.Sprintf("(%d bytes)", len(v)) }
