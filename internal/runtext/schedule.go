package runtext

import (
	"encoding/json"
	"errors"
	"flag"

	"github.com/durable-go/durable/web"
)

// ScheduleFlags defines on fs the flags of `schedule create` and `update`
// (the whole spec) and returns a function that gives the spec they set,
// once fs is parsed; it fails if -input is not JSON.
func ScheduleFlags(fs *flag.FlagSet) func() (web.ScheduleSpec, error) {
	var sp web.ScheduleSpec
	var input string
	fs.StringVar(&sp.Workflow, "workflow", "", "the workflow each firing starts (required)")
	fs.StringVar(&input, "input", "", "the input of each firing, in JSON")
	fs.StringVar(&sp.Cron, "cron", "", `a cron expression ("0 2 * * *") or descriptor ("@hourly")`)
	fs.StringVar(&sp.Zone, "zone", "", "the time zone of -cron (default UTC)")
	fs.StringVar(&sp.Every, "every", "", "a fixed interval instead of -cron (1h)")
	fs.StringVar(&sp.Offset, "offset", "", "shifts the slots of -every")
	fs.StringVar(&sp.Jitter, "jitter", "", "delays each firing by up to this much")
	fs.StringVar(&sp.Grace, "grace", "", "how late a firing may be and count as on time (default 1m)")
	fs.StringVar(&sp.Overlap, "overlap", "", "skip (default), buffer-one or allow-all")
	fs.StringVar(&sp.CatchUp, "catch-up", "", "latest (default), skip or all")
	fs.IntVar(&sp.CatchUpMax, "catch-up-max", 0, "with -catch-up all, how many missed slots run at most (default 100)")
	return func() (web.ScheduleSpec, error) {
		if input != "" {
			if !json.Valid([]byte(input)) {
				return sp, errors.New(`-input must be JSON, such as '"payments"' or '{"team": 3}'`)
			}
			sp.Input = json.RawMessage(input)
		}
		return sp, nil
	}
}
