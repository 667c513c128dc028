package durabletest

import (
	"crypto/rand"
	"encoding/binary"
	"os"
	"strconv"
	"testing"
)

// SeedEnv is the environment variable that fixes the retry jitter seed of
// every Env and CrashEveryStep: rerun a failed test with the seed it
// printed to get the same backoff times.
const SeedEnv = "DURABLETEST_SEED"

// Seed returns a seed for durable.Config.RetrySeed: $DURABLETEST_SEED if
// set, else a random one. When the test fails, it logs the seed and how
// to run the test again with it. [New] and [CrashEveryStep] call it; call
// it for engines you make yourself.
func Seed(t testing.TB) uint64 {
	t.Helper()
	var seed uint64
	if s := os.Getenv(SeedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			t.Fatalf("durabletest: %s=%q: want a number above 0", SeedEnv, s)
		}
		seed = n
	}
	for seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.BigEndian.Uint64(b[:]) >> 1 // fits an int64 flag, for people
	}
	t.Cleanup(func() {
		if failed(t) {
			t.Logf("durabletest: retry jitter seed %d; run again with %s=%d for the same backoff times", seed, SeedEnv, seed)
		}
	})
	return seed
}

// failed is t.Failed, false for a testing.TB that does not implement it
// (a stand-in embedding a nil testing.TB, say).
func failed(t testing.TB) (f bool) {
	defer func() { _ = recover() }()
	return t.Failed()
}
