package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/journal"
)

// fork writes a new run that starts from a copy of a run's journal up to
// a position (durable.ForkRun): the way out for a run parked by a change
// of code. The application's next engine runs it with its current code.
func (c *cli) fork(args []string) int {
	fset := c.flags("fork")
	newID := fset.String("id", "", "the new run's `ID` (default: a new unique id)")
	pos, code, ok := c.parse(fset, args, 3)
	if !ok {
		return code
	}
	path, id := pos[0], pos[1]
	at, err := strconv.Atoi(pos[2])
	if err != nil || at < 0 {
		fmt.Fprintf(c.stderr, "durable fork: POS must be a position (0, 1, ...), not %q\n", pos[2])
		return exitUsage
	}
	s := c.openWritable(path)
	if s == nil {
		return exitFailure
	}
	defer s.Close()
	src, err := s.GetRun(c.ctx, id)
	if err != nil {
		if errors.Is(err, journal.ErrNotFound) {
			return c.errorf("%s: no run %q", path, id)
		}
		return c.storeFailed(path, "run "+id, err)
	}
	fid, err := durable.ForkRun(c.ctx, s, id, at, *newID)
	if err != nil {
		return c.errorf("%s: %v", path, err)
	}
	fmt.Fprintf(c.stdout, "forked run %s at position %d as %s: positions 0 to %d are copied; the next engine with workflow %q that opens %s runs it from there with its code\n",
		id, at, fid, at-1, src.Workflow, path)
	return exitOK
}
