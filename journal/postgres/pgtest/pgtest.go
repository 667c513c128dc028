// Package pgtest gives the tests of journal/postgres a PostgreSQL server: the
// one DURABLE_POSTGRES_URL names, and a fresh schema per test in it.
//
// Without DURABLE_POSTGRES_URL a test that needs the server skips, with a
// message that says how to start one; with DURABLE_REQUIRE_POSTGRES=1 (CI
// sets it) it fails instead, so a missing server never passes silently.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables the tests read.
const (
	// EnvURL names the server: a libpq URL or key=value string.
	EnvURL = "DURABLE_POSTGRES_URL"
	// EnvRequire, when "1", turns a missing server into a test failure.
	EnvRequire = "DURABLE_REQUIRE_POSTGRES"
)

// HowTo says how to run the tests that need a server.
const HowTo = "start a throwaway server with `export DURABLE_POSTGRES_URL=$(scripts/postgres start)` " +
	"from the repository root (PostgreSQL binaries on PATH or in /usr/lib/postgresql/*/bin), then rerun"

// URL returns the server's URL. Without one, it skips t, or fails it when
// DURABLE_REQUIRE_POSTGRES=1.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u != "" {
		return u
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s is not set and %s=1: %s", EnvURL, EnvRequire, HowTo)
	}
	t.Skipf("no PostgreSQL server (%s is not set): %s", EnvURL, HowTo)
	return ""
}

// Schema returns the name of a schema that no other test uses (it does not
// exist yet) and drops it, with everything in it, when t ends.
func Schema(t testing.TB, url string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := strings.ToLower(sanitize(t.Name()))
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	name = "t_" + name + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() { Drop(t, url, name) })
	return name
}

// Drop drops schema name and everything in it.
func Drop(t testing.TB, url, name string) {
	t.Helper()
	// Tried for a while: a test of another package may be restarting the
	// server (see Restart).
	deadline := time.Now().Add(time.Minute)
	for {
		err := drop(url, name)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func drop(url, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	return err
}

func sanitize(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
