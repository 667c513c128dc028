// Package durable is a stand-in for the real package in the analyzer's
// tests: the same names and signatures, no bodies that matter.
package durable

import (
	"context"
	"time"
)

type Context interface {
	context.Context
	RunID() string
}

type Workflow[I, O any] struct{ fn func(Context, I) (O, error) }

func Define[I, O any](name string, fn func(ctx Context, in I) (O, error)) *Workflow[I, O] {
	return &Workflow[I, O]{fn: fn}
}

type StepOption func()

func Step[T any](ctx Context, name string, fn func(context.Context) (T, error), opts ...StepOption) (T, error) {
	var v T
	return v, nil
}

type Future[T any] struct{ v T }

func Go[T any](ctx Context, name string, fn func(context.Context) (T, error), opts ...StepOption) *Future[T] {
	return &Future[T]{}
}

func (f *Future[T]) Get(ctx Context) (T, error) { return f.v, nil }

func Sleep(ctx Context, d time.Duration) error { return nil }

func Now(ctx Context) time.Time { return time.Time{} }

func Receive[T any](ctx Context, channel string) (T, error) {
	var v T
	return v, nil
}

type Saga struct{}

func NewSaga(ctx Context) *Saga { return &Saga{} }

func (s *Saga) Add(name string, fn func(context.Context) error, opts ...StepOption) {}

func Version(ctx Context, change string, min, max int) int { return max }
