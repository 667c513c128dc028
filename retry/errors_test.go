package retry_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/durable-go/durable/retry"
)

func TestPermanent(t *testing.T) {
	t.Parallel()
	if err := retry.Permanent(nil); err != nil {
		t.Errorf("Permanent(nil) = %v, want nil", err)
	}
	err := retry.Permanent(errBoom)
	if err.Error() != "boom" {
		t.Errorf("Permanent(errBoom).Error() = %q, want %q", err.Error(), "boom")
	}
	if errors.Unwrap(err) != errBoom {
		t.Errorf("Unwrap(Permanent(errBoom)) = %v, want errBoom", errors.Unwrap(err))
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errBoom, false},
		{"permanent", err, true},
		{"wrapped", fmt.Errorf("op: %w", err), true},
		{"joined", errors.Join(errBoom, err), true},
		{"under a hint", retry.After(err, time.Second), true},
		{"over a hint", retry.Permanent(retry.After(errBoom, time.Second)), true},
		{"formatted with %v", fmt.Errorf("op: %v", err), false},
	}
	for _, tt := range tests {
		if got := retry.IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestAfter(t *testing.T) {
	t.Parallel()
	if err := retry.After(nil, time.Second); err != nil {
		t.Errorf("After(nil, 1s) = %v, want nil", err)
	}
	err := retry.After(errBoom, time.Second)
	if err.Error() != "boom" {
		t.Errorf("After(errBoom, 1s).Error() = %q, want %q", err.Error(), "boom")
	}
	if !errors.Is(err, errBoom) || errors.Unwrap(err) != errBoom {
		t.Errorf("After(errBoom, 1s) does not unwrap to errBoom")
	}
	tests := []struct {
		name   string
		err    error
		want   time.Duration
		wantOK bool
	}{
		{"nil", nil, 0, false},
		{"plain", errBoom, 0, false},
		{"hint", err, time.Second, true},
		{"zero hint", retry.After(errBoom, 0), 0, true},
		{"negative hint is zero", retry.After(errBoom, -time.Second), 0, true},
		{"wrapped", fmt.Errorf("op: %w", err), time.Second, true},
		{"under permanent", retry.Permanent(err), time.Second, true},
		{"outermost wins", retry.After(fmt.Errorf("op: %w", err), time.Minute), time.Minute, true},
	}
	for _, tt := range tests {
		got, ok := retry.RetryAfter(tt.err)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("%s: RetryAfter(%v) = (%v, %v), want (%v, %v)", tt.name, tt.err, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestPanicError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		value      any
		wantMsg    string
		wantUnwrap error
	}{
		{"string", "kaboom", "retry: panic: kaboom", nil},
		{"int", 42, "retry: panic: 42", nil},
		{"error", errBoom, "retry: panic: boom", errBoom},
	}
	for _, tt := range tests {
		err := &retry.PanicError{Value: tt.value}
		if got := err.Error(); got != tt.wantMsg {
			t.Errorf("%s: Error() = %q, want %q", tt.name, got, tt.wantMsg)
		}
		if got := err.Unwrap(); got != tt.wantUnwrap {
			t.Errorf("%s: Unwrap() = %v, want %v", tt.name, got, tt.wantUnwrap)
		}
	}
}
