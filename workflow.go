package durable

import (
	"fmt"
	"unicode/utf8"

	"github.com/durable-go/durable/journal"
)

// Workflow is a named, typed, deterministic function: the unit the engine
// runs, journals and resumes. Make one with [Define] at package level and
// list it in [Config].Workflows. A Workflow is immutable and safe for
// concurrent use.
type Workflow[I, O any] struct {
	name string
	fn   func(ctx Context, in I) (O, error)
}

// Definition is a workflow of any input and output type, as [Config] lists
// them. Only [*Workflow] implements it.
type Definition interface {
	// Name returns the workflow's name, as recorded in the journal.
	Name() string
	// execute decodes the input, runs the function and encodes its result.
	execute(c *wfContext, input []byte) ([]byte, error)
	// checkInput reports whether input decodes into the input type.
	checkInput(input []byte, limit int) error
}

// Define returns the workflow name running fn. The name is recorded with
// every run, so renaming a workflow strands its unfinished runs (they
// park). fn must be deterministic: see the package documentation.
//
// Define panics if name is empty, longer than 512 bytes or not UTF-8, or
// fn is nil: these are programming errors. Two definitions may share a
// name (two versions of one workflow in a test, say) but not within one
// engine's Config.
func Define[I, O any](name string, fn func(ctx Context, in I) (O, error)) *Workflow[I, O] {
	if name == "" || len(name) > journal.MaxIDLen || !utf8.ValidString(name) {
		panic(fmt.Sprintf("durable: Define: invalid workflow name %q", name))
	}
	if fn == nil {
		panic(fmt.Sprintf("durable: Define(%q): nil function", name))
	}
	return &Workflow[I, O]{name: name, fn: fn}
}

// Name returns the workflow's name.
func (w *Workflow[I, O]) Name() string { return w.name }

func (w *Workflow[I, O]) execute(c *wfContext, input []byte) ([]byte, error) {
	var in I
	if err := decodePayload(input, &in, c.x.e.cfg.MaxPayloadBytes); err != nil {
		c.x.park(payloadErr(err, "input of run %q", c.x.id)) // no longer decodes into I: park, keep it
	}
	out, err := w.fn(c, in)
	if err != nil {
		return nil, err
	}
	b, err := encodePayload(out, c.x.e.cfg.MaxPayloadBytes)
	return b, payloadErr(err, "result of run %q", c.x.id)
}

func (w *Workflow[I, O]) checkInput(input []byte, limit int) error {
	var in I
	return decodePayload(input, &in, limit)
}
