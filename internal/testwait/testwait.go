// Package testwait waits, in tests, for what a cluster does in its own time.
package testwait

import (
	"testing"
	"time"
)

// Eventually polls cond every 20 ms until it holds, failing the test with
// what when within runs out; it returns how long it took.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}
