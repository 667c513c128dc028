package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version prints the module version and VCS revision this binary was
// built from, and the Go version.
func (c *cli) version(args []string) int {
	if _, code, ok := c.parse(c.flags("version"), args, 0); !ok {
		return code
	}
	v, rev := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" && rev != "" {
					rev += " (modified)"
				}
			}
		}
	}
	if c.json {
		return c.printJSON(map[string]string{"version": v, "revision": rev, "go": runtime.Version()})
	}
	fmt.Fprintf(c.stdout, "durable %s", v)
	if rev != "" {
		fmt.Fprintf(c.stdout, " %s", rev)
	}
	fmt.Fprintf(c.stdout, " (%s)\n", runtime.Version())
	return exitOK
}
