package durable_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	_ "time/tzdata" // the DST test must not depend on the machine's zone files

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

// job is what the schedules of these tests start: it sleeps for its
// input's duration (so firings can overlap) and returns.
var job = durable.Define("job", func(ctx durable.Context, d time.Duration) (string, error) {
	if err := durable.Sleep(ctx, d); err != nil {
		return "", err
	}
	return durable.WorkflowInfoFrom(ctx).RunID, nil
})

// firings lists the runs of job, by id, with their creation times.
func firings(t *testing.T, e *durable.Engine) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	after := ""
	for {
		page, err := e.List(t.Context(), durable.ListOptions{Workflow: "job", After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Runs {
			out[r.ID] = r.CreatedAt
		}
		if after = page.NextAfter; after == "" {
			return out
		}
	}
}

// slotIDs returns the firing run ids of schedule name at each of slots.
func slotIDs(name string, slots ...time.Time) []string {
	var ids []string
	for _, s := range slots {
		ids = append(ids, name+"@"+s.UTC().Format(time.RFC3339))
	}
	return ids
}

func keys(m map[string]time.Time) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// A cron schedule over 30 days fires every slot exactly once, within its
// jitter, across restarts of the engine at slot times (while the
// scheduler fires) and in between.
func TestScheduleCron30Days(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		cfg := quietConfig(job)
		cfg.Retention = -1 // keep the firings to count them
		env := durabletest.New(t, cfg)
		ctx := t.Context()
		t0 := time.Now().UTC()
		const jit = 10 * time.Minute
		if err := env.Engine.CreateSchedule(ctx, "hourly", durable.Schedule{
			Workflow: "job", Input: 20 * time.Minute, Cron: "0 * * * *", Jitter: jit, Overlap: durable.OverlapAllowAll,
		}); err != nil {
			t.Fatal(err)
		}
		end := t0.Add(30 * 24 * time.Hour)
		var want []time.Time
		for s := t0.Truncate(time.Hour).Add(time.Hour); !s.After(end); s = s.Add(time.Hour) {
			want = append(want, s)
		}
		restarts := 0
		for i, s := range want {
			switch i % 53 {
			case 7: // at the slot: the scheduler wakes as the engine closes
				time.Sleep(time.Until(s))
				env.Restart()
				restarts++
			case 31: // in the jitter window, firings under way
				time.Sleep(time.Until(s.Add(jit / 2)))
				env.Restart()
				restarts++
			}
		}
		time.Sleep(time.Until(end.Add(time.Hour)))
		synctest.Wait()

		got := firings(t, env.Engine)
		wantIDs := slotIDs("hourly", want...)
		if !slices.Equal(keys(got), wantIDs) {
			t.Fatalf("%d firings, want %d (one per slot); first got %v, first want %v", len(got), len(wantIDs), keys(got)[:3], wantIDs[:3])
		}
		for i, s := range want {
			at := got[wantIDs[i]]
			if at.Before(s) || !at.Before(s.Add(jit)) {
				t.Errorf("%s started at %v, want within [slot, slot+%v)", wantIDs[i], at, jit)
			}
		}
		info, err := env.Engine.GetSchedule(ctx, "hourly")
		if err != nil {
			t.Fatal(err)
		}
		if info.Started != len(want) || info.Skipped != 0 || info.Missed != 0 {
			t.Errorf("Started %d, Skipped %d, Missed %d; want %d, 0, 0", info.Started, info.Skipped, info.Missed, len(want))
		}
		if restarts < 20 {
			t.Errorf("only %d restarts", restarts)
		}
		run, err := env.Store.GetRun(ctx, info.RunID)
		if err != nil || run.Epoch < 5 {
			t.Errorf("the schedule's run is in epoch %d (%v): it should continue as new as it goes", run.Epoch, err)
		}
	})
}

// Each overlap policy, with firings that last 90 minutes every hour.
func TestScheduleOverlap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy  durable.OverlapPolicy
		started []int // hours whose slot started a run
		skipped int
	}{
		{durable.OverlapSkip, []int{1, 3}, 2},
		{durable.OverlapBufferOne, []int{1, 2, 3}, 1},
		{durable.OverlapAllowAll, []int{1, 2, 3, 4}, 0},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				env := durabletest.New(t, quietConfig(job))
				ctx := t.Context()
				t0 := time.Now().UTC()
				if err := env.Engine.CreateSchedule(ctx, "s", durable.Schedule{
					Workflow: "job", Input: 90 * time.Minute, Every: time.Hour, Overlap: tc.policy,
				}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(4*time.Hour + 30*time.Minute)
				synctest.Wait()
				got := firings(t, env.Engine)
				var slots []time.Time
				for _, h := range tc.started {
					slots = append(slots, t0.Add(time.Duration(h)*time.Hour))
				}
				if want := slotIDs("s", slots...); !slices.Equal(keys(got), want) {
					t.Fatalf("firings %v, want %v", keys(got), want)
				}
				info, err := env.Engine.GetSchedule(ctx, "s")
				if err != nil {
					t.Fatal(err)
				}
				if info.Skipped != tc.skipped {
					t.Errorf("Skipped = %d, want %d (recent: %+v)", info.Skipped, tc.skipped, info.Recent)
				}
				if tc.policy == durable.OverlapBufferOne {
					// The 2h slot waits for the 1h firing, which ends at
					// 2h30, and starts within a poll (at most a minute).
					at := got[slotIDs("s", t0.Add(2*time.Hour))[0]]
					if lo := t0.Add(150 * time.Minute); at.Before(lo) || at.After(lo.Add(time.Minute)) {
						t.Errorf("the buffered firing started at %v, want within a minute after %v", at, lo)
					}
					// The 3h slot waits in the buffer at 4h30.
					if !info.Buffered.Equal(t0.Add(3*time.Hour)) && got[slotIDs("s", t0.Add(3*time.Hour))[0]].IsZero() {
						t.Errorf("Buffered = %v", info.Buffered)
					}
				}
			})
		})
	}
}

// Each catch-up policy after the engines were down over five slots.
func TestScheduleCatchUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		policy  durable.CatchUpPolicy
		max     int
		caught  []int // missed hours that run at the restart
		missed  int
		grace   time.Duration
		restart time.Duration // after t0
	}{
		{"skip", durable.CatchUpSkip, 0, nil, 5, 0, 6*time.Hour + 30*time.Minute},
		{"latest", durable.CatchUpLatest, 0, []int{6}, 4, 0, 6*time.Hour + 30*time.Minute},
		{"all-3", durable.CatchUpAll, 3, []int{4, 5, 6}, 2, 0, 6*time.Hour + 30*time.Minute},
		{"all", durable.CatchUpAll, 0, []int{2, 3, 4, 5, 6}, 0, 0, 6*time.Hour + 30*time.Minute},
		// Within Grace of the 6h slot: it is on time, and latest runs it alone.
		{"latest-on-time", durable.CatchUpLatest, 0, []int{6}, 4, time.Hour, 6*time.Hour + 30*time.Minute},
		{"skip-on-time", durable.CatchUpSkip, 0, []int{6}, 4, time.Hour, 6*time.Hour + 30*time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				env := durabletest.New(t, quietConfig(job))
				ctx := t.Context()
				t0 := time.Now().UTC()
				if err := env.Engine.CreateSchedule(ctx, "c", durable.Schedule{
					Workflow: "job", Input: time.Minute, Every: time.Hour, Overlap: durable.OverlapAllowAll,
					CatchUp: tc.policy, CatchUpMax: tc.max, Grace: tc.grace,
				}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(90 * time.Minute) // the 1h slot fires
				if err := env.Engine.Close(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Until(t0.Add(tc.restart)))
				env.Restart()
				time.Sleep(time.Minute)
				synctest.Wait()
				hours := append([]int{1}, tc.caught...)
				var slots []time.Time
				for _, h := range hours {
					slots = append(slots, t0.Add(time.Duration(h)*time.Hour))
				}
				got := firings(t, env.Engine)
				if want := slotIDs("c", slots...); !slices.Equal(keys(got), want) {
					t.Fatalf("firings %v, want %v", keys(got), want)
				}
				// The next slot is on time again.
				time.Sleep(time.Until(t0.Add(7*time.Hour + time.Minute)))
				synctest.Wait()
				if _, ok := firings(t, env.Engine)[slotIDs("c", t0.Add(7*time.Hour))[0]]; !ok {
					t.Errorf("the 7h slot did not fire after the catch-up")
				}
				info, err := env.Engine.GetSchedule(ctx, "c")
				if err != nil {
					t.Fatal(err)
				}
				if info.Missed != tc.missed {
					t.Errorf("Missed = %d, want %d", info.Missed, tc.missed)
				}
			})
		})
	}
}

// Across daylight-saving changes in America/New_York the slots are
// robfig/cron's: on 2026-03-08 (02:00 EST → 03:00 EDT) "30 2 * * *" has no
// slot and "0 * * * *" has 23; on 2026-11-01 (02:00 EDT → 01:00 EST)
// "30 2 * * *" has one slot and "0 * * * *" 25, 01:00 twice.
func TestScheduleDaylightSaving(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		day        time.Time // local midnight of the day of the change
		daily      []string  // local times of "30 2 * * *" slots that day
		hourly     int       // slots of "0 * * * *" that day
		hourlyOnes int       // of which at 01:00 local
	}{
		{"spring-forward", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), nil, 23, 1},
		{"fall-back", time.Date(2026, 11, 1, 0, 0, 0, 0, ny), []string{"02:30 EST"}, 25, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				time.Sleep(time.Until(tc.day.Add(-12 * time.Hour)))
				env := durabletest.New(t, quietConfig(job))
				ctx := t.Context()
				for name, cron := range map[string]string{"daily": "30 2 * * *", "hourly": "0 * * * *"} {
					if err := env.Engine.CreateSchedule(ctx, name, durable.Schedule{
						Workflow: "job", Cron: cron, Zone: "America/New_York", Overlap: durable.OverlapAllowAll,
					}); err != nil {
						t.Fatal(err)
					}
				}
				next := tc.day.AddDate(0, 0, 1)
				time.Sleep(time.Until(next.Add(12 * time.Hour)))
				synctest.Wait()
				var daily []string
				hourly, ones := 0, 0
				for id := range firings(t, env.Engine) {
					name, slot, _ := strings.Cut(id, "@")
					at, err := time.Parse(time.RFC3339, slot)
					if err != nil {
						t.Fatal(err)
					}
					at = at.In(ny)
					if at.Before(tc.day) || !at.Before(next) {
						continue
					}
					switch name {
					case "daily":
						daily = append(daily, at.Format("15:04 MST"))
					case "hourly":
						hourly++
						if at.Hour() == 1 {
							ones++
						}
					}
				}
				if !slices.Equal(daily, tc.daily) || hourly != tc.hourly || ones != tc.hourlyOnes {
					t.Errorf("daily %v, hourly %d (%d at 01:00); want %v, %d (%d)", daily, hourly, ones, tc.daily, tc.hourly, tc.hourlyOnes)
				}
				// The day after: back to one slot a day, 24 an hour.
				info, err := env.Engine.GetSchedule(ctx, "daily")
				if err != nil {
					t.Fatal(err)
				}
				if want := time.Date(next.Year(), next.Month(), next.Day()+1, 2, 30, 0, 0, ny); !info.Next.Equal(want) {
					t.Errorf("daily Next = %v, want %v", info.Next.In(ny), want)
				}
			})
		})
	}
}

// Create, get, list, pause, resume, trigger, update and delete, and the
// errors of bad calls.
func TestScheduleControl(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		env := durabletest.New(t, quietConfig(job))
		e := env.Engine
		ctx := t.Context()
		t0 := time.Now().UTC()
		spec := durable.Schedule{Workflow: "job", Input: time.Minute, Every: time.Hour}
		for _, bad := range []durable.Schedule{
			{Workflow: "job", Cron: "61 * * * *"},
			{Workflow: "job", Cron: "0 * * * *", Zone: "Mars/Olympus"},
			{Workflow: "job", Cron: "@every 1m"},
			{Workflow: "job"},
			{Cron: "@hourly"},
			{Workflow: "job", Every: time.Hour, Jitter: 2 * time.Hour},
			{Workflow: "job", Every: time.Millisecond},
			{Workflow: "job", Every: time.Hour, Cron: "@daily"},
			{Workflow: "job", Cron: "0 0 30 2 *"}, // February 30th: never
		} {
			if err := e.CreateSchedule(ctx, "bad", bad); !errors.Is(err, durable.ErrInvalid) {
				t.Errorf("CreateSchedule(%+v) = %v, want ErrInvalid", bad, err)
			}
		}
		if err := e.CreateSchedule(ctx, "a b", spec); !errors.Is(err, durable.ErrInvalid) {
			t.Errorf("a name with a space: %v, want ErrInvalid", err)
		}
		if err := e.CreateSchedule(ctx, "typed", durable.Schedule{Workflow: "job", Input: "not a duration", Every: time.Hour}); !errors.Is(err, durable.ErrPayload) {
			t.Errorf("an input of the wrong type: %v, want ErrPayload", err)
		}
		if _, err := e.GetSchedule(ctx, "nope"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("GetSchedule of an unknown schedule: %v, want ErrNotFound", err)
		}
		if err := e.PauseSchedule(ctx, "nope"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("PauseSchedule of an unknown schedule: %v, want ErrNotFound", err)
		}

		if err := e.CreateSchedule(ctx, "a", spec); err != nil {
			t.Fatal(err)
		}
		if err := e.CreateSchedule(ctx, "a", spec); !errors.Is(err, durable.ErrScheduleExists) {
			t.Errorf("second CreateSchedule: %v, want ErrScheduleExists", err)
		}
		if err := e.CreateSchedule(ctx, "b", durable.Schedule{Workflow: "job", Input: []byte(`"2m"`), Cron: "@daily"}); !errors.Is(err, durable.ErrPayload) {
			t.Errorf("bytes for a duration: %v, want ErrPayload", err)
		}
		if err := e.CreateSchedule(ctx, "b", durable.Schedule{Workflow: "job", Input: 2 * time.Minute, Cron: "@daily", Zone: "Europe/Paris"}); err != nil {
			t.Fatal(err)
		}
		list, err := e.ListSchedules(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
			t.Fatalf("ListSchedules = %+v, %v", list, err)
		}
		if a := list[0]; !a.Next.Equal(t0.Add(time.Hour)) || a.Paused || a.Spec.Every != time.Hour || string(a.Spec.Input.(json.RawMessage)) != "60000000000" {
			t.Errorf("schedule a: %+v", a)
		}

		time.Sleep(time.Hour + time.Second) // a fires once
		if err := e.PauseSchedule(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if info, _ := e.GetSchedule(ctx, "a"); !info.Paused || !info.Next.IsZero() || info.Started != 1 {
			t.Errorf("after pause: %+v", info)
		}
		time.Sleep(3 * time.Hour) // slots 2h, 3h, 4h pass while paused
		id, err := e.TriggerSchedule(ctx, "a")
		if err != nil || !strings.HasPrefix(id, "a@trigger:") {
			t.Fatalf("TriggerSchedule = %q, %v", id, err)
		}
		if _, err := e.Get(ctx, id); err != nil {
			t.Errorf("the triggered run: %v", err)
		}
		if err := e.ResumeSchedule(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(t0.Add(5*time.Hour + time.Second))) // the 5h slot fires
		synctest.Wait()
		got := keys(firings(t, e))
		want := append(slotIDs("a", t0.Add(time.Hour), t0.Add(5*time.Hour)), id)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("firings %v, want %v", got, want)
		}

		if err := e.UpdateSchedule(ctx, "a", durable.Schedule{Workflow: "job", Input: time.Minute, Every: 30 * time.Minute}); err != nil {
			t.Fatal(err)
		}
		if info, _ := e.GetSchedule(ctx, "a"); info.Spec.Every != 30*time.Minute || !info.Next.Equal(t0.Add(5*time.Hour+30*time.Minute)) {
			t.Errorf("after update: Every %v, Next %v", info.Spec.Every, info.Next)
		}
		if err := e.DeleteSchedule(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.GetSchedule(ctx, "a"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("GetSchedule after delete: %v, want ErrNotFound", err)
		}
		if err := e.DeleteSchedule(ctx, "a"); !errors.Is(err, durable.ErrNotFound) {
			t.Errorf("second DeleteSchedule: %v, want ErrNotFound", err)
		}
		before := len(firings(t, e))
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if n := len(firings(t, e)); n != before { // a fires no more; b's slot (midnight in Paris) is not due
			t.Errorf("%d firings after the delete", n-before)
		}
		if list, _ := e.ListSchedules(ctx); len(list) != 1 || list[0].Name != "b" {
			t.Errorf("ListSchedules after delete = %+v", list)
		}
		// The name is free again, and the new schedule survives a restart.
		if err := e.CreateSchedule(ctx, "a", durable.Schedule{Workflow: "job", Input: time.Minute, Every: 2 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		e = env.Restart()
		if info, err := e.GetSchedule(ctx, "a"); err != nil || info.Spec.Every != 2*time.Hour || info.Started != 0 {
			t.Errorf("recreated schedule: %+v, %v", info, err)
		}
	})
}

// An engine on a shared store (journal.Memory) opened without workflows
// runs schedules once Start registered one: CreateSchedule does not wait
// for an engine that would never come.
func TestScheduleWorkflowsFromStart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e, err := durable.New(journal.NewMemory(), quietConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		ctx := t.Context()
		if _, err := durable.Start(ctx, e, job, "first", time.Duration(0)); err != nil {
			t.Fatal(err)
		}
		if err := e.CreateSchedule(ctx, "s", durable.Schedule{Workflow: "job", Every: time.Hour}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now().UTC().Truncate(time.Hour)
		time.Sleep(time.Hour + time.Minute)
		synctest.Wait()
		if _, ok := firings(t, e)[slotIDs("s", t0.Add(time.Hour))[0]]; !ok {
			t.Errorf("the schedule did not fire: %v", keys(firings(t, e)))
		}
	})
}
