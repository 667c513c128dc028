package durable

import (
	"encoding/json"
	"hash/fnv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/durable-go/durable/internal/clip"
)

// Slot arithmetic of schedules: what a [Schedule] means in time. Every
// function here is pure (it depends on its arguments alone), because the
// scheduler workflow calls them and must compute the same slots on
// replay.

// maxScheduleName bounds a schedule's name: it is part of run ids
// ("schedule:<name>", "<name>@<slot>") that must fit journal.MaxIDLen.
const maxScheduleName = 200

// minEvery is the shortest interval of an interval schedule.
const minEvery = time.Second

// defaultGrace is Schedule.Grace's default.
const defaultGrace = time.Minute

// maxCatchUp bounds Schedule.CatchUpMax.
const maxCatchUp = 10_000

// defaultCatchUpMax is Schedule.CatchUpMax's default with CatchUpAll.
const defaultCatchUpMax = 100

// scheduleSpec is a Schedule as the journal holds it: the input encoded.
type scheduleSpec struct {
	Workflow   string        `msgpack:"w"`
	Input      []byte        `msgpack:"i,omitempty"`
	Cron       string        `msgpack:"c,omitempty"`
	Zone       string        `msgpack:"z,omitempty"`
	Every      time.Duration `msgpack:"e,omitempty"`
	Offset     time.Duration `msgpack:"o,omitempty"`
	Jitter     time.Duration `msgpack:"j,omitempty"`
	Grace      time.Duration `msgpack:"g,omitempty"`
	Overlap    OverlapPolicy `msgpack:"ov,omitempty"`
	CatchUp    CatchUpPolicy `msgpack:"cu,omitempty"`
	CatchUpMax int           `msgpack:"cm,omitempty"`
}

// slotter computes the slots of a valid spec.
type slotter struct {
	cron  cron.Schedule // nil for an interval schedule
	every time.Duration
	off   time.Duration
}

// checkScheduleName refuses a name that cannot be part of the schedule's
// run ids, or that would be ambiguous in them.
func checkScheduleName(name string) error {
	if name == "" || len(name) > maxScheduleName {
		return invalidf("durable: schedule name %s: want 1 to %d bytes", clip.Q(name), maxScheduleName)
	}
	for _, r := range name {
		ok := r == '-' || r == '_' || r == '.' || r == ':' ||
			('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
		if !ok {
			return invalidf("durable: schedule name %s: only letters, digits and - _ . : are allowed", clip.Q(name))
		}
	}
	return nil
}

// compile checks the spec and returns its slotter. Errors match ErrInvalid.
func (s *scheduleSpec) compile() (*slotter, error) {
	if s.Workflow == "" {
		return nil, invalidf("durable: schedule: no workflow")
	}
	if s.Jitter < 0 || s.Grace < 0 || s.Offset < 0 || s.CatchUpMax < 0 || s.CatchUpMax > maxCatchUp {
		return nil, invalidf("durable: schedule: Jitter, Grace, Offset and CatchUpMax must not be negative, CatchUpMax at most %d", maxCatchUp)
	}
	if s.Overlap > OverlapAllowAll || s.CatchUp > CatchUpAll {
		return nil, invalidf("durable: schedule: unknown overlap (%d) or catch-up (%d) policy", s.Overlap, s.CatchUp)
	}
	switch {
	case s.Cron != "" && s.Every != 0:
		return nil, invalidf("durable: schedule: Cron and Every are exclusive")
	case s.Every != 0:
		if s.Every < minEvery {
			return nil, invalidf("durable: schedule: Every %v is shorter than %v", s.Every, minEvery)
		}
		if s.Zone != "" {
			return nil, invalidf("durable: schedule: Zone applies to Cron only")
		}
		if s.Offset >= s.Every || s.Jitter >= s.Every {
			return nil, invalidf("durable: schedule: Offset (%v) and Jitter (%v) must be shorter than Every (%v)", s.Offset, s.Jitter, s.Every)
		}
		return &slotter{every: s.Every, off: s.Offset}, nil
	case s.Cron != "":
		if s.Offset != 0 {
			return nil, invalidf("durable: schedule: Offset applies to Every only")
		}
		c := strings.TrimSpace(s.Cron)
		if strings.HasPrefix(c, "TZ=") || strings.HasPrefix(c, "CRON_TZ=") {
			return nil, invalidf("durable: schedule: cron %s: give the time zone in Zone", clip.Q(s.Cron))
		}
		if strings.HasPrefix(c, "@every") {
			return nil, invalidf("durable: schedule: cron %s: use Every for a fixed interval", clip.Q(s.Cron))
		}
		sched, err := cron.ParseStandard(c)
		if err != nil {
			return nil, invalidf("durable: schedule: cron %s: %v", clip.Q(s.Cron), err)
		}
		loc := time.UTC
		if s.Zone != "" {
			if loc, err = time.LoadLocation(s.Zone); err != nil {
				return nil, invalidf("durable: schedule: zone %s: %v", clip.Q(s.Zone), err)
			}
		}
		spec, ok := sched.(*cron.SpecSchedule)
		if !ok { // unreachable: ParseStandard makes a SpecSchedule but for @every
			return nil, invalidf("durable: schedule: cron %s is not a calendar spec", clip.Q(s.Cron))
		}
		spec.Location = loc
		return &slotter{cron: spec}, nil
	}
	return nil, invalidf("durable: schedule: neither Cron nor Every")
}

// next returns the first slot strictly after t, in UTC; zero if there is
// none (a cron spec that never matches, such as February 30th).
func (s *slotter) next(t time.Time) time.Time {
	if s.cron != nil {
		n := s.cron.Next(t)
		if n.IsZero() {
			return n
		}
		return journalTime(n)
	}
	// Slots are Offset + k×Every from the Unix epoch, so they do not
	// depend on when the schedule was created or updated.
	d := t.Sub(time.Unix(0, 0).Add(s.off))
	k := d / s.every
	if d >= 0 {
		k++
	}
	return journalTime(time.Unix(0, 0).Add(s.off).Add(k * s.every))
}

// jitter returns the delay of slot's firing: a fraction of max drawn from
// a hash of the schedule's name and the slot, the same on every replay and
// in every process.
func jitter(name string, slot time.Time, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	var b [8]byte
	n := slot.UnixNano()
	for i := range b {
		b[i] = byte(n >> (8 * i))
	}
	h.Write(b[:])
	return time.Duration(h.Sum64() % uint64(max))
}

// maxSlotScan bounds the slots one wake-up looks at: a cron schedule down
// for longer than that many slots skips the oldest without counting them
// (a minutely schedule: about 19 years).
const maxSlotScan = 10_000_000

// dueSlots is what a scheduler finds at now with every slot up to cursor
// handled: the slots to fire, oldest first, after the catch-up policy, the
// number of missed slots dropped, and the new cursor (the last due slot).
// A slot is due when its firing time (the slot plus its jitter) is at or
// before now, and missed when now is later than that by more than grace.
func (s *slotter) dueSlots(sp *scheduleSpec, name string, cursor, now time.Time) (fire []time.Time, dropped int, last time.Time) {
	grace := sp.Grace
	if grace == 0 {
		grace = defaultGrace
	}
	keep := 1
	if sp.CatchUp == CatchUpAll {
		keep = sp.CatchUpMax
		if keep == 0 {
			keep = defaultCatchUpMax
		}
	}
	if s.cron == nil {
		// Jump over the slots that cannot matter: those missed before
		// the latest keep ones.
		horizon := now.Add(-grace - sp.Jitter - time.Duration(keep+1)*s.every)
		if horizon.After(cursor) {
			dropped += int(horizon.Sub(cursor) / s.every)
			cursor = horizon
		}
	}
	last = cursor
	var missed []time.Time
	for t, n := s.next(cursor), 0; !t.IsZero() && n < maxSlotScan; t, n = s.next(t), n+1 {
		at := t.Add(jitter(name, t, sp.Jitter))
		if at.After(now) {
			break
		}
		last = t
		if now.Sub(at) <= grace {
			fire = append(fire, t)
			continue
		}
		missed = append(missed, t)
		if len(missed) > keep {
			missed = missed[1:]
			dropped++
		}
	}
	switch sp.CatchUp {
	case CatchUpSkip:
		dropped += len(missed)
		missed = nil
	case CatchUpLatest:
		if len(fire) > 0 && len(missed) > 0 {
			dropped += len(missed) // the on-time slot is the latest
			missed = nil
		}
	}
	return append(missed, fire...), dropped, last
}

// nextFiring returns the next slot after cursor and when it fires.
func (s *slotter) nextFiring(sp *scheduleSpec, name string, cursor time.Time) (slot, at time.Time) {
	slot = s.next(cursor)
	if slot.IsZero() {
		return slot, slot
	}
	return slot, slot.Add(jitter(name, slot, sp.Jitter))
}

// firingID is the run id of the firing of schedule name at slot.
func firingID(name string, slot time.Time) string {
	return name + "@" + slot.UTC().Format(time.RFC3339)
}

// triggerID is the run id of a firing asked for by TriggerSchedule at t.
func triggerID(name string, t time.Time) string {
	return name + "@trigger:" + t.UTC().Format(time.RFC3339Nano)
}

// inputJSON renders an encoded input for people and JSON APIs.
func inputJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if j, ok := jsonMessage(b); ok {
		return json.RawMessage(j)
	}
	var v any
	if err := unmarshal(b, &v); err != nil {
		return nil
	}
	j, err := json.Marshal(jsonable(v))
	if err != nil {
		return nil
	}
	return j
}
