// Package inspect lends the durable command what it needs of package
// durable's decoding to print a journal without an engine (cmd/durable
// opens the file read-only while no application has it open), without
// widening package durable's API. Package durable sets these functions
// when it is initialized: a program that imports durable can call them.
package inspect

import "github.com/durable-go/durable/journal"

var (
	// DescribePayload renders a payload the engine encoded (a run's input
	// or output, a step's result, a message) as JSON for people, cut at
	// 200 bytes; bytes that do not decode are described as such. It never
	// fails.
	DescribePayload func(b []byte) string

	runInfo any // func(journal.Run) durable.RunInfo
)

// SetRunInfo is package durable's: f returns what Engine.Get returns for
// a stored run, without what only a live engine knows.
func SetRunInfo[T any](f func(journal.Run) T) { runInfo = f }

// RunInfo returns what Engine.Get returns for the stored run r (with its
// recorded error decoded), as a T, which must be durable.RunInfo:
//
//	info := inspect.RunInfo[durable.RunInfo](r)
func RunInfo[T any](r journal.Run) T { return runInfo.(func(journal.Run) T)(r) }
