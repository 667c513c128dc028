// Command durable inspects and repairs a durable journal file offline:
// while no application has it open.
//
// Usage:
//
//	durable <command> [flags] FILE ...
//
// The commands:
//
//	list FILE [-status S] [-workflow W] [-limit N]
//	    one line per run: id, workflow, status, created, updated, parent,
//	    and the first line of the error of a failed or parked run.
//	    S is running, parked, completed, failed or canceled.
//	show FILE ID
//	    a run's fields and its timeline, one journal record per line.
//	cancel FILE ID
//	    records a cancel request; the application acts on it when it next
//	    opens the journal (its steps see their contexts canceled, and the
//	    run ends canceled unless the workflow handles it). Finished runs
//	    are refused.
//	resume FILE ID
//	    sets a parked run back to running, so the next engine resumes it.
//	    (Engines also retry parked runs of the workflows they have at Open;
//	    a run that still does not fit the code is parked again.)
//	check FILE
//	    verifies the file: bbolt's own consistency check (in a child
//	    process, so a damaged file cannot crash this one), every stored
//	    value's checksum, and the indexes; says what each problem means.
//	compact FILE [-o OUT]
//	    rewrites the file without its free space, in place (atomically)
//	    or into OUT, and prints the sizes before and after.
//	export FILE RUN... -o OUT
//	    copies the runs, their records and their child runs into OUT, a
//	    new journal: what durabletest.Replay replays in a test, to check a
//	    change of workflow code against real runs before deploying it.
//
// list, show, check and export open the file read-only and may run side by side;
// cancel, resume and compact need it to themselves. A file that a running
// application holds is refused: stop the application, or work on a copy.
//
// Exit status: 0 on success (check: the file is sound), 1 on failure
// (check: problems found), 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/durable-go/durable/journal"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// lockTimeout bounds the wait for a file another process holds.
var lockTimeout = time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type command struct {
	name, args, summary string
	run                 func(c *cli, args []string) int
	hidden              bool
}

var commands []command

func init() {
	commands = []command{
		{name: "list", args: "FILE [-status S] [-workflow W] [-limit N]", summary: "list runs", run: (*cli).list},
		{name: "show", args: "FILE ID", summary: "show a run and its timeline", run: (*cli).show},
		{name: "cancel", args: "FILE ID", summary: "request that a run be canceled", run: (*cli).cancel},
		{name: "resume", args: "FILE ID", summary: "set a parked run back to running", run: (*cli).resume},
		{name: "check", args: "FILE", summary: "verify the file and every checksum", run: (*cli).check},
		{name: "compact", args: "FILE [-o OUT]", summary: "shrink the file", run: (*cli).compact},
		{name: "export", args: "FILE RUN... -o OUT", summary: "copy runs into a new journal (for durabletest.Replay)", run: (*cli).export},
		{name: bboltCheckCommand, args: "FILE", run: (*cli).bboltCheckChild, hidden: true},
	}
}

// cli is one invocation: where its output goes.
type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
	// self makes the command that runs this program with args: check
	// runs its bbolt check that way, in a child process.
	self func(args ...string) (*exec.Cmd, error)
}

// run executes the command line args (without the program name) and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{ctx: context.Background(), stdout: stdout, stderr: stderr, self: selfCommand}
	return c.main(args)
}

func selfCommand(args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, args...), nil
}

// main executes the command line args (without the program name).
func (c *cli) main(args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		c.usage(c.stdout)
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			return cmd.run(c, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "durable: unknown command %q\n", args[0])
	c.usage(c.stderr)
	return exitUsage
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: durable <command> [flags] FILE ...\n\ncommands:\n")
	for _, cmd := range commands {
		if !cmd.hidden {
			fmt.Fprintf(w, "  %-8s %-42s %s\n", cmd.name, cmd.args, cmd.summary)
		}
	}
	fmt.Fprint(w, `
list, show, check and export open FILE read-only; cancel, resume and
compact need it to themselves. cancel and resume take effect when the
application next opens the journal (engines also retry parked runs of the
workflows they have at Open). Exit status: 0 ok, 1 failure or problems
found, 2 usage.
`)
}

// flags makes the flag set of a command; its usage line names the
// command's arguments.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("durable "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	for _, cmd := range commands {
		if cmd.name == name {
			fs.Usage = func() {
				fmt.Fprintf(fs.Output(), "usage: durable %s %s\n", name, cmd.args)
				fs.PrintDefaults()
			}
		}
	}
	return fs
}

// parse parses args with fs, allowing flags after positional arguments
// ("list app.db -status parked"); "--" ends the flags. It wants exactly
// npos positional arguments (at least -npos if npos is negative). It returns them, or the exit status of a
// usage error or a help request.
func (c *cli) parse(fs *flag.FlagSet, args []string, npos int) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false // the flag package said why
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if (npos >= 0 && len(pos) != npos) || (npos < 0 && len(pos) < -npos) {
		what := "too many arguments"
		if npos < 0 || len(pos) < npos {
			what = "missing arguments"
		}
		fmt.Fprintf(c.stderr, "durable %s: %s\n", strings.TrimPrefix(fs.Name(), "durable "), what)
		fs.Usage()
		return nil, exitUsage, false
	}
	return pos, 0, true
}

// errorf prints an error message to stderr and returns exitFailure.
func (c *cli) errorf(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "durable: "+format+"\n", args...)
	return exitFailure
}

// openReadOnly opens the journal at path for reading; on failure it says
// why and returns nil.
func (c *cli) openReadOnly(path string) *journal.Bolt {
	s, err := journal.OpenBolt(path, &journal.BoltOptions{ReadOnly: true, LockTimeout: lockTimeout})
	if err != nil {
		c.openFailed(path, err)
		return nil
	}
	return s
}

// openWritable opens an existing journal for writing (OpenBolt would create
// a missing one); on failure it says why and returns nil.
func (c *cli) openWritable(path string) *journal.Bolt {
	if _, err := os.Stat(path); err != nil {
		c.openFailed(path, err)
		return nil
	}
	s, err := journal.OpenBolt(path, &journal.BoltOptions{LockTimeout: lockTimeout})
	if err != nil {
		c.openFailed(path, err)
		return nil
	}
	return s
}

// openFailed explains why the journal at path could not be opened.
func (c *cli) openFailed(path string, err error) {
	switch {
	case errors.Is(err, journal.ErrLocked):
		c.errorf("%s: the journal is open in another process (pid unknown); stop it or use a copy", path)
	case errors.Is(err, fs.ErrNotExist):
		c.errorf("%s: no such file", path)
	case errors.Is(err, journal.ErrNotJournal):
		c.errorf("%s is not a durable journal: %v", path, err)
	case errors.Is(err, journal.ErrVersion):
		c.errorf("%s was written by a newer version of durable: %v", path, err)
	case errors.Is(err, journal.ErrCorrupt):
		c.errorf("%s is damaged and cannot be opened: %v\n(restore it from a backup if you have one; nothing was written to it)", path, err)
	default:
		c.errorf("%s: %v", path, err)
	}
}

// storeFailed explains an error of a journal method.
func (c *cli) storeFailed(path, what string, err error) int {
	if errors.Is(err, journal.ErrCorrupt) {
		return c.errorf("%s: %s: %v\n(run `durable check %s` for the whole picture)", path, what, err, path)
	}
	return c.errorf("%s: %s: %v", path, what, err)
}

// fmtTime formats a stored time for people: UTC, to the second.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// commas formats n with thousands separators: 1,234,567.
func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// plural returns "1 run" or "2 runs".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return commas(n) + " " + many
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
