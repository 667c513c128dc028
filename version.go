package durable

import (
	"fmt"
	"strconv"

	"github.com/durable-go/durable/internal/clip"
)

// DefaultVersion is what [Version] returns for a run that passed the
// call's point before the call existed in the code: the version of the
// code as it was before the first change.
const DefaultVersion = -1

// Version lets old and new code paths live side by side while runs that
// started on the old code are still in flight:
//
//	v := durable.Version(ctx, "add-fraud-check", durable.DefaultVersion, 1)
//	if v >= 1 {
//		// new code path
//	} else {
//		// the path old runs took
//	}
//
// The first time a run reaches the call, Version returns max and
// journals it (one position, one commit), so the run keeps taking the
// same path on every replay. On replay it returns the journaled value. A
// run that passed this point before the call existed in the code (its
// journal holds something else here, or it went on past here) gets
// [DefaultVersion], and the call takes no position, so journals written
// by the old code replay unchanged. Within one run, every call with the
// same change returns the same value (the first call's): one change id
// may guard several places of the code.
//
// change names the change; it is recorded, so keep it stable. Raise max
// when you change the same place again (old runs keep the version they
// recorded). When no run older than a version remains, raise min to it
// and delete the old branches; a run whose version is outside [min, max]
// parks with a [*NondeterminismError] naming the change, the recorded
// version and the supported ones, and resumes when an engine with code
// that supports it opens the journal. See "Changing workflow code" in the
// README for the life cycle.
//
// Answers recorded for Version calls that the code no longer makes are
// skipped, so a call may be deleted with its last old branch.
//
// An empty change or min > max is a programming error: the run parks.
func Version(ctx Context, change string, min, max int) int {
	x := ctx.executor()
	if err := x.enter(); err != nil {
		x.misused(err)
		return max // not journaled: no workflow will replay it
	}
	defer x.leave()
	if x.aborted() {
		x.exit()
	}
	if min > max || change == "" {
		// A programming error: park, so that fixed code can resume the run.
		x.park(errorf("durable: run %s: Version(%s, %d, %d) at %s: the change is empty or min is greater than max", clip.Q(x.id), clip.Q(change), min, max, callerOutside()))
	}
	if v, ok := x.versions[change]; ok {
		x.checkVersion(change, v, min, max, int(x.next))
		return v
	}
	x.skipVersions(change)
	pos := int(x.next)
	var v int
	switch {
	case x.versionRecorded(change):
		o := x.take(kindVersion, change)
		done, _ := o.done()
		if err := unmarshal(done.Data, &v); err != nil {
			x.park(payloadErr(err, "recorded version of change %q at position %d of run %q", change, o.pos, x.id))
		}
	case x.replaying() || x.pastEnd():
		// The run passed this point before the call existed: the journal
		// holds another operation here, or goes on after here, or the
		// run finished (a replay check of a finished run).
		v = DefaultVersion
	default:
		o := x.take(kindVersion, change)
		if o.full {
			x.park(x.tooLong())
		}
		r := o.record(kindVersion, change, flagDone)
		r.Data, _ = marshal(max) // an int always encodes
		x.write(nil, r)
		v = max
	}
	if x.versions == nil {
		x.versions = map[string]int{}
	}
	x.versions[change] = v
	x.checkVersion(change, v, min, max, pos)
	return v
}

// skipVersions passes over the Version answers recorded at the next
// positions, except one for change keep, when the code asks for another
// operation there: the Version call was deleted once its old branch was,
// and an answer has no effect to replay. The answer is kept for a later
// call with the same change.
func (x *executor) skipVersions(keep string) {
	for x.ri < len(x.recs) && x.recs[x.ri].Pos == x.next && x.recs[x.ri].Kind == kindVersion && x.recs[x.ri].Name != keep {
		r := x.recs[x.ri]
		var v int
		if _, seen := x.versions[r.Name]; !seen && unmarshal(r.Data, &v) == nil {
			if x.versions == nil {
				x.versions = map[string]int{}
			}
			x.versions[r.Name] = v
		}
		for x.ri < len(x.recs) && x.recs[x.ri].Pos == x.next {
			x.ri++
		}
		x.next++
	}
}

// versionRecorded reports whether the journal holds, at the next
// position, the answer of a Version call for change.
func (x *executor) versionRecorded(change string) bool {
	if x.ri >= len(x.recs) {
		return false
	}
	r := x.recs[x.ri]
	return r.Pos == x.next && r.Kind == kindVersion && r.Name == change
}

// checkVersion parks the run if v is outside [min, max].
func (x *executor) checkVersion(change string, v, min, max, pos int) {
	if v >= min && v <= max {
		return
	}
	x.park(&NondeterminismError{
		RunID:    x.id,
		Workflow: x.run.def.Name(),
		Position: pos,
		Recorded: describeVersion(change, v),
		Called:   fmt.Sprintf("Version(%q) supporting versions %s to %s", change, versionName(min), versionName(max)),
		Location: callerOutside(),
	})
}

func describeVersion(change string, v int) string {
	if v == DefaultVersion {
		return fmt.Sprintf("change %q at DefaultVersion (the run passed this point before the change)", change)
	}
	return fmt.Sprintf("change %q at version %d", change, v)
}

func versionName(v int) string {
	if v == DefaultVersion {
		return "DefaultVersion"
	}
	return strconv.Itoa(v)
}
