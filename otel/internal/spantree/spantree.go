// Package spantree prints spans as a tree, one line per span, for the
// tests and the example: a person reads one trace across processes.
package spantree

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Span is what the tree shows of a span.
type Span struct {
	Name     string
	TraceID  string
	SpanID   string
	ParentID string // "" for a root
	Start    time.Time
	End      time.Time
	Error    string            // the error status's description; "" if not an error
	Attrs    map[string]string // those the tree shows (see Keys)
	Events   []Event
	Process  string // which process exported it, if known
	order    int
}

// Event is a span event.
type Event struct {
	Name  string
	Attrs map[string]string
}

// FromSDK converts spans of the OpenTelemetry SDK.
func FromSDK(spans []sdktrace.ReadOnlySpan) []Span {
	out := make([]Span, 0, len(spans))
	for _, s := range spans {
		sp := Span{
			Name: s.Name(), TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(),
			Start: s.StartTime(), End: s.EndTime(), Attrs: map[string]string{},
		}
		if p := s.Parent(); p.IsValid() {
			sp.ParentID = p.SpanID().String()
		}
		if s.Status().Code == 1 { // codes.Error
			sp.Error = s.Status().Description
		}
		for _, a := range s.Attributes() {
			sp.Attrs[string(a.Key)] = a.Value.Emit()
		}
		for _, e := range s.Events() {
			ev := Event{Name: e.Name, Attrs: map[string]string{}}
			for _, a := range e.Attributes {
				ev.Attrs[string(a.Key)] = a.Value.Emit()
			}
			sp.Events = append(sp.Events, ev)
		}
		out = append(out, sp)
	}
	return out
}

// Keys are the attributes a line shows, in this order.
var Keys = []string{"durable.run.id", "durable.step.attempt"}

// EventKeys are the event attributes a line shows.
var EventKeys = []string{"durable.reason", "durable.resume.reason", "durable.position", "durable.replay.records", "host.name", "process.pid"}

// Print writes the spans of each trace as a tree: children under their
// parent, in start order. A span whose parent was not exported (its
// process was killed before it ended the span) is shown under a line
// that says so. With times, each line shows the span's offset from the
// trace's first span and its duration.
func Print(w io.Writer, spans []Span, times bool) {
	for i := range spans {
		spans[i].order = i
	}
	byID := map[string]*Span{}
	for i := range spans {
		byID[spans[i].SpanID] = &spans[i]
	}
	children := map[string][]*Span{}
	var traces []string
	roots := map[string][]string{} // trace -> parent ids not exported, or "" for real roots
	for i := range spans {
		s := &spans[i]
		if !slices.Contains(traces, s.TraceID) {
			traces = append(traces, s.TraceID)
		}
		parent := s.ParentID
		if parent != "" && byID[parent] == nil {
			if !slices.Contains(roots[s.TraceID], parent) {
				roots[s.TraceID] = append(roots[s.TraceID], parent)
			}
		}
		if parent == "" && !slices.Contains(roots[s.TraceID], "") {
			roots[s.TraceID] = append(roots[s.TraceID], "")
		}
		children[parent] = append(children[parent], s)
	}
	for _, c := range children {
		slices.SortStableFunc(c, func(a, b *Span) int {
			if c := a.Start.Compare(b.Start); c != 0 {
				return c
			}
			return a.order - b.order
		})
	}
	for _, tr := range traces {
		fmt.Fprintf(w, "trace %s\n", tr)
		var t0 time.Time
		for i := range spans {
			if spans[i].TraceID == tr && (t0.IsZero() || spans[i].Start.Before(t0)) {
				t0 = spans[i].Start
			}
		}
		var walk func(parent string, depth int)
		walk = func(parent string, depth int) {
			for _, s := range children[parent] {
				if s.TraceID != tr {
					continue
				}
				fmt.Fprintf(w, "%s%s\n", strings.Repeat("  ", depth+1), line(s, t0, times))
				for _, e := range s.Events {
					if e.Name == "exception" {
						continue
					}
					fmt.Fprintf(w, "%s· %s%s\n", strings.Repeat("  ", depth+2), e.Name, attrs(e.Attrs, EventKeys))
				}
				walk(s.SpanID, depth+1)
			}
		}
		// Real roots first, then spans whose parent is missing, each group
		// in the order of its first span.
		groups := roots[tr]
		first := func(parent string) time.Time {
			for _, c := range children[parent] {
				if c.TraceID == tr {
					return c.Start
				}
			}
			return time.Time{}
		}
		slices.SortStableFunc(groups, func(a, b string) int {
			if (a == "") != (b == "") {
				if a == "" {
					return -1
				}
				return 1
			}
			return first(a).Compare(first(b))
		})
		for _, r := range groups {
			if r == "" {
				walk("", 0)
				continue
			}
			fmt.Fprintf(w, "  (span %s was never exported: its process was killed before the span ended)\n", r)
			walk(r, 1)
		}
	}
}

func line(s *Span, t0 time.Time, times bool) string {
	var b strings.Builder
	b.WriteString(s.Name)
	b.WriteString(attrs(s.Attrs, Keys))
	if s.Process != "" {
		fmt.Fprintf(&b, " [%s]", s.Process)
	}
	if s.Error != "" {
		fmt.Fprintf(&b, " ERROR %q", s.Error)
	}
	if times {
		fmt.Fprintf(&b, " +%v %v", s.Start.Sub(t0).Round(time.Millisecond), s.End.Sub(s.Start).Round(time.Millisecond))
	}
	return b.String()
}

// labels are the short names of attributes in a line.
var labels = map[string]string{
	"durable.run.id": "run", "durable.step.attempt": "attempt", "durable.reason": "reason",
	"durable.resume.reason": "reason", "durable.position": "position", "durable.replay.records": "records",
	"host.name": "host", "process.pid": "pid",
}

func attrs(m map[string]string, keys []string) string {
	var b strings.Builder
	for _, k := range keys {
		if v, ok := m[k]; ok {
			l := labels[k]
			if l == "" {
				l = k
			}
			fmt.Fprintf(&b, " %s=%s", l, v)
		}
	}
	return b.String()
}
