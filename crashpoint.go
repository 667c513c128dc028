package durable

// crashHook, when set (only by tests of this package, in a child process
// that the test then expects to die), is called at named points of the
// engine's work so a test can kill the process exactly there:
//
//	start            a run was created, before it executes
//	step-before      before a step attempt runs
//	step-effect      the attempt returned, before its outcome is committed
//	step-commit      the outcome is committed, before the workflow sees it
//	timer-fire       a timer fell due, before its firing is committed
//	message-consume  a message was taken, before its receipt is committed
//	child-start      before a child's creation is committed
//	child-started    the child was created, before it runs
//	cancel           a cancel (WithCancel, Future.Cancel) is committed, before it acts
//	complete         before a run's final status is committed
//	completed        the final status is committed, before the parent hears
//	parked           the parked status is committed, before the live run goes
//	schedule-fire    a schedule's firing run was created, before the firing's step commits
//
// pos is the journal position of the operation (-1 for run-level points).
// A nil check costs nothing measurable on the step path.
var crashHook func(point, runID string, pos int)

func crashPoint(point, runID string, pos int) {
	if crashHook != nil {
		crashHook(point, runID, pos)
	}
}
