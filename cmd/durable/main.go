// Command durable inspects and steers durable runs: those of a running
// application, through the web handler it mounts (package web), and
// those in the journal file of a stopped one.
//
// Usage:
//
//	durable [-json] <command> [flags] FILE ...          a stopped application's journal
//	durable -addr URL [-json] <command> [flags] ...   a running application
//
// -addr (or $DURABLE_ADDR) is where the application mounts web.Handler,
// such as http://localhost:8080/durable. A bbolt journal belongs to the
// process that has it open, so while the application runs, -addr is the
// way in; the FILE commands refuse a journal another process holds.
//
// The commands:
//
//	list FILE [-status S] [-workflow W] [-parent P] [-limit N] [-after CURSOR]
//	    one line per run: id, workflow, status, created, updated, parent,
//	    and what the run is doing now (-addr) or the first line of the
//	    error of a failed or parked run. S is running, parked, completed,
//	    failed or canceled. A list that stops at -limit prints the
//	    -after CURSOR of the next page on stderr (in "next" with -json).
//	show FILE ID
//	    a run's fields and its timeline, one journal record per line; with
//	    -addr, also what it is doing now and the diff of a parked run.
//	cancel FILE ID
//	    with -addr, cancels the run at once (a parked run ends canceled).
//	    On a FILE, records a cancel request that the application acts on
//	    when it next opens the journal. Finished runs are refused.
//	resume FILE ID
//	    with -addr, resumes a parked run at once with the application's
//	    code. On a FILE, sets it back to running for the next engine.
//	    (Engines also retry parked runs of the workflows they have at
//	    Open; a run that still does not fit the code is parked again.)
//	send ID CHANNEL JSON|-      (-addr only)
//	    stores a message for the run (JSON, or "-" to read it from stdin);
//	    the receiving code decodes it into the type it receives.
//	watch [ID]                  (-addr only)
//	    prints each change of a run's status as it happens, until Ctrl-C.
//	schedule SUBCOMMAND ...     (-addr only)
//	    the application's schedules: list, show NAME, create NAME
//	    -workflow W (-cron EXPR [-zone Z] | -every D) [-input JSON]
//	    [-jitter D] [-overlap P] [-catch-up P] [-catch-up-max N], update
//	    NAME (the whole spec again), pause, resume, trigger and delete NAME.
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
//	    With -addr, no FILE: the runs come from the running application.
//	fork FILE RUN POS [-id NEWID]
//	    writes a new run of RUN's workflow and input whose journal is a
//	    copy of RUN's up to position POS; the application's next engine
//	    runs it with its current code from there. The way out for a run
//	    parked by a change of code: fork it at the position its error
//	    names.
//	queues FILE [-n N]
//	    one line per queue: its limits (with -addr; a FILE does not hold
//	    the application's Config.Queues, so they print as ?), its running
//	    and waiting runs; then up to N waiting runs of each queue in the
//	    order they will be admitted (position, id, workflow, priority).
//	version
//	    the module version and VCS revision of this binary.
//
// With -addr, list, show, cancel, resume, queues and export take no FILE. -json prints
// the web API's JSON objects in both modes. Times print in UTC as
// 2006-01-02 15:04:05Z (RFC 3339 in JSON). Help goes to stdout.
//
// list, show, check and export open the file read-only and may run side by side;
// cancel, resume, compact and fork need it to themselves.
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
	"strings"
	"time"

	"github.com/durable-go/durable/internal/runtext"
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
	fileOnly            bool // not with -addr
}

var commands []command

func init() {
	commands = []command{
		{name: "list", args: "FILE [-status S] [-workflow W] [-limit N] [-after C]", summary: "list runs", run: (*cli).list},
		{name: "show", args: "FILE ID", summary: "show a run and its timeline", run: (*cli).show},
		{name: "cancel", args: "FILE ID", summary: "cancel a run", run: (*cli).cancel},
		{name: "resume", args: "FILE ID", summary: "resume a parked run", run: (*cli).resume},
		{name: "send", args: "ID CHANNEL JSON|-", summary: "send a message to a run (-addr only)", run: (*cli).send},
		{name: "watch", args: "[ID]", summary: "print run changes as they happen (-addr only)", run: (*cli).watch},
		{name: "schedule", args: "list|show|create|update|pause|resume|trigger|delete ...", summary: "schedules (-addr only; schedule.go)", run: (*cli).schedule},
		{name: "check", args: "FILE", summary: "verify the file and every checksum", run: (*cli).check, fileOnly: true},
		{name: "compact", args: "FILE [-o OUT]", summary: "shrink the file", run: (*cli).compact, fileOnly: true},
		{name: "export", args: "FILE RUN... -o OUT", summary: "copy runs into a new journal (for durabletest.Replay)", run: (*cli).export},
		{name: "fork", args: "FILE RUN POS [-id NEWID]", summary: "start a run anew from a run's journal up to POS", run: (*cli).fork, fileOnly: true},
		{name: "queues", args: "FILE [-n N]", summary: "list queues and their waiting runs", run: (*cli).queues},
		{name: "version", args: "", summary: "print the version", run: (*cli).version},
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
	// remote is the running application's API, with -addr; nil in FILE
	// mode.
	remote *remote
	// json asks for JSON output (-json).
	json bool
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
	addr := os.Getenv("DURABLE_ADDR")
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		switch name {
		case "h", "help":
			c.usage(c.stdout)
			return exitOK
		case "json":
			c.json = true
			args = args[1:]
			continue
		case "addr":
			if !hasVal {
				if len(args) < 2 {
					fmt.Fprintf(c.stderr, "durable: -addr needs a URL\n")
					return exitUsage
				}
				val, args = args[1], args[1:]
			}
			addr = val
			args = args[1:]
			continue
		}
		fmt.Fprintf(c.stderr, "durable: unknown flag %q before the command\n", args[0])
		c.usage(c.stderr)
		return exitUsage
	}
	if len(args) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	if args[0] == "help" {
		c.usage(c.stdout)
		return exitOK
	}
	if addr != "" {
		r, err := newRemote(addr)
		if err != nil {
			fmt.Fprintf(c.stderr, "durable: %v\n", err)
			return exitUsage
		}
		c.remote = r
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			if c.remote != nil && cmd.fileOnly {
				fmt.Fprintf(c.stderr, "durable %s: works on a journal FILE of a stopped application, not with -addr\n", cmd.name)
				return exitUsage
			}
			return cmd.run(c, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "durable: unknown command %q\n", args[0])
	c.usage(c.stderr)
	return exitUsage
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: durable [-json] <command> [flags] FILE ...            (a stopped application's journal)\n")
	fmt.Fprintf(w, "       durable -addr URL [-json] <command> [flags] ...     (a running application)\n\ncommands:\n")
	for _, cmd := range commands {
		if !cmd.hidden {
			fmt.Fprintf(w, "  %-8s %-46s %s\n", cmd.name, cmd.args, cmd.summary)
		}
	}
	fmt.Fprint(w, `
FILE mode: list, show, check and export open FILE read-only; cancel,
resume, compact and fork need it to themselves, and a running
application's journal is refused. cancel, resume and fork then take
effect when the application next opens the journal.

-addr URL (or $DURABLE_ADDR): list, show, cancel, resume, send, watch
and export talk to a running application through the web handler it
mounts (package web), e.g. -addr http://localhost:8080/durable; no FILE.
There cancel and resume act at once, and send stores a JSON message.

-json prints JSON (the web API's objects) in both modes. Times are UTC
(2006-01-02 15:04:05Z; RFC 3339 in JSON). A list that stops at -limit
says how to get the next page (-after CURSOR). Exit status: 0 ok,
1 failure or problems found, 2 usage.
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

// plural returns "1 run" or "2 runs".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return runtext.Commas(n) + " " + many
}
