package durable_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/durabletest"
	"github.com/durable-go/durable/journal"
)

// A schedule starts a run of a workflow at each slot of a cron
// expression, in a time zone; the run's id names the slot. Here a test
// clock stands in for time.
func ExampleEngine_CreateSchedule() {
	report := durable.Define("report", func(ctx durable.Context, team string) (string, error) {
		return "report for " + team, nil
	})
	clock := durabletest.NewClock(time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)) // a Monday
	e, err := durable.New(journal.NewMemory(), &durable.Config{Workflows: []durable.Definition{report}, Clock: clock})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()

	// Weekdays at 09:30 in Paris.
	err = e.CreateSchedule(ctx, "daily-report", durable.Schedule{
		Workflow: "report",
		Input:    "payments",
		Cron:     "30 9 * * 1-5",
		Zone:     "Europe/Paris",
		Overlap:  durable.OverlapSkip,
		CatchUp:  durable.CatchUpLatest,
	})
	if err != nil {
		log.Fatal(err)
	}
	info, err := e.GetSchedule(ctx, "daily-report")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("next slot:", info.Next)

	// At the slot, the schedule starts run "daily-report@<slot>".
	clock.Set(info.Next)
	id := "daily-report@2026-03-02T08:30:00Z"
	for {
		if _, err := e.Get(ctx, id); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	h, err := durable.Attach(ctx, e, report, id)
	if err != nil {
		log.Fatal(err)
	}
	out, err := h.Result(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id+":", out)

	// Pause it; a trigger still starts a run at once.
	if err := e.PauseSchedule(ctx, "daily-report"); err != nil {
		log.Fatal(err)
	}
	id, err = e.TriggerSchedule(ctx, "daily-report")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("triggered:", id)
	info, _ = e.GetSchedule(ctx, "daily-report")
	fmt.Println("paused:", info.Paused, "started:", info.Started)
	// Output:
	// next slot: 2026-03-02 08:30:00 +0000 UTC
	// daily-report@2026-03-02T08:30:00Z: report for payments
	// triggered: daily-report@trigger:2026-03-02T08:30:00Z
	// paused: true started: 2
}
