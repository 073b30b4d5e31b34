// Package testwait waits, in tests, for what a cluster does in its own time.
package testwait

import (
	"runtime"
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

// Goroutines waits up to within for the goroutine count to fall back to
// before (what a test started has ended), failing the test with every
// goroutine's stack when it does not.
func Goroutines(t testing.TB, before int, within time.Duration) {
	t.Helper()
	start := time.Now()
	for runtime.NumGoroutine() > before {
		if time.Since(start) > within {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
