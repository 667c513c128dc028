package postgres_test

import (
	"os"
	"testing"

	"github.com/durable-go/durable/journal/postgres/pgtest"
)

// TestMain stops the server of this test binary's own (pgtest.Private)
// that the tests which restart a server started.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopPrivate()
	os.Exit(code)
}
