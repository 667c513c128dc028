package durable

import "github.com/durable-go/durable/journal"

// RunInfoOf returns what [Engine.Get] returns for the stored run r, with
// its recorded error decoded into RunInfo.Err. It is for tools that read a
// journal without an engine (cmd/durable opens the file read-only while no
// application has it open).
func RunInfoOf(r journal.Run) RunInfo { return infoOf(&r) }

// DescribePayload renders a payload the engine encoded (a run's input or
// output, a step's result, a message) as JSON for people, cut at 200
// bytes; bytes that do not decode are described as such. It never fails.
func DescribePayload(b []byte) string { return describeValue(b) }
