// Package web serves an engine's admin API and dashboard from inside the
// application, as an http.Handler: nothing to deploy, and the documented
// way to see and steer a running application whose journal (a bbolt file)
// no other process may open.
//
//	mux.Handle("/durable/", http.StripPrefix("/durable", web.Handler(e, &web.Options{
//		Authorize: func(r *http.Request) error { ... }, // your session or token check
//	})))
//
// It uses the standard library only.
//
// # Safety
//
// The handler changes state (cancel, resume, send), so: [Options.Authorize]
// is called on every request before anything else; every POST goes
// through http.CrossOriginProtection (a cross-origin browser request is
// refused with 403, so another site cannot make an operator's browser
// cancel a run); [Options.ReadOnly] refuses every change. The dashboard
// escapes every string (html/template), shows payloads cut to 200 bytes,
// and loads nothing from elsewhere (no CDN, no build step).
//
// # JSON API
//
// The API is stable: fields may be added, none removed or changed. Paths
// are relative to the mount point. Every response except the event stream
// is JSON with Content-Type application/json. Times are RFC 3339 in UTC
// (with a fraction of a second when there is one). Errors are
//
//	{"error": "what went wrong", "code": "not_found"}
//
// with the status the code names: bad_request 400, forbidden 403 (Authorize
// refused, read-only mode, or a cross-origin change), not_found 404,
// method_not_allowed 405, conflict 409 (the run finished, or its workflow
// is not registered in this engine), payload_too_large 413, internal 500,
// unavailable 503 (the engine is closing).
//
//	GET  api/runs?status=&workflow=&parent=&created_after=&created_before=&after=&limit=
//	     -> {"runs": [Run...], "next": "<cursor or empty>"}
//	     Runs in id order. status is running, parked, completed, failed or
//	     canceled; parent lists a run's children; created_after and
//	     created_before are RFC 3339 times; limit is 1 to 1000 (default 50);
//	     pass next as after for the next page.
//	GET  api/runs/{id}
//	     -> {"run": Run, "events": [Event...], "children": [Run...]}
//	GET  api/runs/{id}/journal
//	     -> RunJournal: the run and its records as the journal stores them,
//	     and its children's ids (what durable export -addr copies)
//	POST api/runs/{id}/cancel  -> {"run": Run}
//	     A running run is asked to stop (see durable.Engine.Cancel); a
//	     parked run ends canceled at once; a completed or failed run: 409.
//	POST api/runs/{id}/resume  -> {"run": Run}
//	     A parked run runs again with the engine's code (and parks again
//	     if it still does not fit); a finished run: 409.
//	POST api/runs/{id}/send/{channel}  (body: the message in JSON) -> {"ok": true}
//	     The message is stored before the answer; the receiving code
//	     decodes it with encoding/json into the type it receives (see
//	     durable.Send and json.RawMessage). A body that is not JSON: 400;
//	     larger than Options.MaxBodyBytes or the engine's
//	     Config.MaxPayloadBytes: 413.
//	GET  api/stats
//	     -> {"runs": {"running": n, "parked": n, ...}, "runs_capped": bool,
//	         "engine": {"since", "steps", "steps_per_second", "loaded_runs",
//	         "cached_runs", "evicted_runs", "transactions", "commits",
//	         "commits_per_transaction", "commit_ms", "window_seconds"}}
//	     Rates are over the time since the previous call (at least a
//	     second; since the engine opened, the first time); commit_ms is
//	     the mean duration of a journal transaction, fsync included.
//	     Counting runs reads them: each status is counted up to 10,000
//	     (runs_capped says a count stopped there).
//	GET  api/events[?run=ID]
//	     Server-sent events (text/event-stream): "ready" once, then "run"
//	     events (data: a Run) for runs whose status, update time, wake
//	     time or cancel flag changed, and a "tick" event after each look
//	     that found the journal changed. The stream looks every
//	     Options.PollInterval, and reads the run list only when the
//	     journal committed something; it follows up to 10,000 runs.
//	GET  api/schedules, GET api/schedules/{name}, POST api/schedules
//	     (body: a ScheduleSpec with "name"), POST
//	     api/schedules/{name}/update|pause|resume|trigger|delete
//	     Schedules (durable.Engine.CreateSchedule, ...): see schedules.go.
//	     The dashboard lists them at schedules, with their buttons and a
//	     form to create one.
//
// A Run object:
//
//	{"id", "workflow", "status", "error" (omitted when none), "parent",
//	 "created_at", "updated_at", "wake_at", "deadline", "cancel_requested",
//	 "input", "output" (JSON text cut at 200 bytes; GET api/runs/{id} only),
//	 "waiting_for": "retrying step \"charge\": attempt 3 at ...",
//	 "pending": [{"position", "kind", "name", "attempt", "next_attempt",
//	              "last_error", "due", "child", "inbox"}],
//	 "inbox": n, "inbox_channels": {"channel": n},
//	 "diff": {"position", "recorded", "called", "location"},   // parked by a code change
//	 "trace": [{"workflow", "run", "call", "position", "attempts", "error", "stack"}]}
//
// pending lists the operations the run began and did not finish (see
// durable.RunInfo.Pending); trace breaks a failure into its path across
// await points (a child's step's error, say), outermost first. An Event
// is one journal record: {"position", "seq", "kind", "name", "what",
// "time", "written", "detail"}, where time is a time the record names (a
// retry's next attempt, a sleep's end) and written when it was written.
//
// # Dashboard
//
// The root of the mount serves the dashboard: the runs table with status
// filters and paging, and a page per run with its timeline, what it waits
// for, its children, the diff of a parked run, and Cancel, Resume and Send
// buttons (hidden in read-only mode). Pages follow the event stream and
// update themselves.
package web
