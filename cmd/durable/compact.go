package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/durable-go/durable/internal/runtext"
	"github.com/durable-go/durable/journal"
)

// compact rewrites the journal without its free space.
func (c *cli) compact(args []string) int {
	fset := c.flags("compact")
	out := fset.String("o", "", "write the compacted journal to `OUT` (a new file) instead of replacing FILE")
	pos, code, ok := c.parse(fset, args, 1)
	if !ok {
		return code
	}
	path := pos[0]
	before, err := os.Stat(path)
	if err != nil {
		c.openFailed(path, err)
		return exitFailure
	}
	dst := path
	if *out != "" {
		dst = *out
		if fi, err := os.Stat(dst); err == nil && !os.SameFile(fi, before) {
			return c.errorf("%s exists; remove it or choose another name for the compacted journal", dst)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return c.errorf("%v", err)
		}
	}
	// A quick look first: a file that an application holds is refused
	// within lockTimeout, and a bad file with the same words as elsewhere.
	s := c.openReadOnly(path)
	if s == nil {
		return exitFailure
	}
	s.Close()
	if err := journal.Compact(path, dst); err != nil {
		if errors.Is(err, journal.ErrLocked) || errors.Is(err, journal.ErrNotJournal) ||
			errors.Is(err, journal.ErrVersion) || errors.Is(err, fs.ErrNotExist) {
			c.openFailed(path, err)
			return exitFailure
		}
		return c.errorf("compact %s: %v\n(%s is unchanged)", path, err, dst)
	}
	after, err := os.Stat(dst)
	if err != nil {
		return c.errorf("%v", err)
	}
	verb := "compacted " + path
	if dst != path {
		verb = "wrote " + dst
	}
	b, a := before.Size(), after.Size()
	change := "no change"
	if b > 0 && a != b {
		pct := float64(b-a) / float64(b) * 100
		if a < b {
			change = fmt.Sprintf("%.0f%% smaller", pct)
		} else {
			change = fmt.Sprintf("%.0f%% larger", -pct)
		}
	}
	fmt.Fprintf(c.stdout, "%s: %s before, %s after (%s)\n", verb, size(b), size(a), change)
	return exitOK
}

// size formats a file size: "12,288 bytes (12.0 KiB)".
func size(n int64) string {
	s := runtext.Commas(int(n)) + " bytes"
	const unit = 1024
	if n < unit {
		return s
	}
	f, suffix := float64(n)/unit, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if f < unit {
			break
		}
		f, suffix = f/unit, u
	}
	return fmt.Sprintf("%s (%.1f %s)", s, f, suffix)
}
