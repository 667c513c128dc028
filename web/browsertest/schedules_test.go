package browsertest

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDashboardSchedules opens the schedules page from the header,
// creates a schedule with the form, triggers it, pauses it and deletes
// it with its buttons; each change must show on the page.
func TestDashboardSchedules(t *testing.T) {
	ctx := browser(t)
	e, url := demo(t)
	row := `tr[data-schedule="nightly-export"]`

	step(t, ctx, "open the schedules page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#live-state.on`)),
		chromedp.Click(chromedp.CSS(`header nav a[href="./schedules"]`)), chromedp.WaitVisible(chromedp.CSS(`form#new-schedule`)))
	if empty := text(t, ctx, `table.schedules tbody`); !strings.Contains(empty, "No schedules") {
		t.Errorf("the schedules page of an application without schedules:\n%s", empty)
	}
	step(t, ctx, "create a schedule with the form",
		chromedp.SendKeys(chromedp.CSS(`#new-schedule input[name=name]`), "nightly-export"),
		chromedp.SendKeys(chromedp.CSS(`#new-schedule input[name=workflow]`), "export"),
		chromedp.SendKeys(chromedp.CSS(`#new-schedule input[name=cron]`), "0 2 * * *"),
		chromedp.SendKeys(chromedp.CSS(`#new-schedule input[name=zone]`), "Europe/Paris"),
		chromedp.SetValue(chromedp.CSS(`#new-schedule select[name=overlap]`), "buffer-one"),
		chromedp.SendKeys(chromedp.CSS(`#new-schedule input[name=input]`), `"2026-11"`),
		chromedp.Click(chromedp.CSS(`#new-schedule button`)),
		chromedp.WaitVisible(chromedp.CSS(row)))
	if r := text(t, ctx, row); !strings.Contains(r, "0 2 * * *") || !strings.Contains(r, "Europe/Paris") || !strings.Contains(r, "buffer-one") {
		t.Errorf("the new schedule's row:\n%s", r)
	}
	info, err := e.GetSchedule(context.Background(), "nightly-export")
	if err != nil || info.Spec.Workflow != "export" || info.Spec.Zone != "Europe/Paris" {
		t.Fatalf("the schedule the form created: %+v, %v", info, err)
	}
	screenshot(t, ctx, "schedules.png")

	step(t, ctx, "trigger it and see the firing",
		chromedp.Click(chromedp.CSS(row+` button[data-post$="/trigger"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+` .badge.s-started`)))
	if info, _ := e.GetSchedule(context.Background(), "nightly-export"); info.Started != 1 || len(info.Recent) != 1 || !info.Recent[0].Manual {
		t.Errorf("after the trigger: %+v", info)
	}
	step(t, ctx, "pause it", chromedp.Click(chromedp.CSS(row+` button[data-post$="/pause"]`)),
		chromedp.WaitVisible(chromedp.CSS(row+` button[data-post$="/resume"]`)))
	if info, _ := e.GetSchedule(context.Background(), "nightly-export"); !info.Paused {
		t.Errorf("the schedule is not paused after the Pause button")
	}
	screenshot(t, ctx, "schedules-paused.png")
	step(t, ctx, "delete it", chromedp.Click(chromedp.CSS(row+` button[data-post$="/delete"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(row)))
	if list, _ := e.ListSchedules(context.Background()); len(list) != 0 {
		t.Errorf("schedules after the Delete button: %+v", list)
	}
}
