package httpapi

import (
	"log/slog"
	"sync"
	"time"
)

// maxThrottleKeys bounds the user names and addresses a throttle follows;
// past it, keys whose budget is whole again are forgotten first.
const maxThrottleKeys = 100_000

// throttle counts logins per key (a user name, an IP address) in a leaky
// bucket that drains perMinute tries a minute: each try counts before its
// password is hashed and a successful one is taken back, so the bucket
// holds the failures and the tries still in flight. A key whose bucket is
// full is refused (429) before any hashing, so that a guesser spends
// little of the hashing that legitimate logins wait for. (x/time/rate's
// limiter cannot hand a token back once it is due, which the refund of a
// successful try needs; hence these few lines.)
type throttle struct {
	kind      string // "user" or "address", for the log
	perMinute float64
	log       *slog.Logger

	mu   sync.Mutex
	keys map[string]*bucket
}

type bucket struct {
	level  float64 // tries counted, draining at perMinute a minute
	at     time.Time
	logged bool // the refusal was logged since the bucket last emptied
}

func newThrottle(kind string, perMinute int, log *slog.Logger) *throttle {
	return &throttle{kind: kind, perMinute: float64(perMinute), log: log, keys: map[string]*bucket{}}
}

func (t *throttle) drain(b *bucket, now time.Time) {
	b.level = max(0, b.level-now.Sub(b.at).Minutes()*t.perMinute)
	b.at = now
	if b.level == 0 {
		b.logged = false
	}
}

// take counts one try of key, or says how long to wait when its bucket is
// full (the first refusal since the bucket last emptied is logged).
func (t *throttle) take(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.keys[key]
	if b == nil {
		if len(t.keys) >= maxThrottleKeys {
			t.sweep(now)
		}
		b = &bucket{at: now}
		t.keys[key] = b
	}
	t.drain(b, now)
	if b.level+1 > t.perMinute {
		if !b.logged {
			b.logged = true
			t.log.Warn("too many failed logins; refusing further tries for a while", t.kind, key, "failures_per_minute", t.perMinute)
		}
		return time.Duration((b.level + 1 - t.perMinute) / t.perMinute * float64(time.Minute))
	}
	b.level++
	return 0
}

// refund takes back a try of key: the login succeeded.
func (t *throttle) refund(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.keys[key]; b != nil {
		b.level = max(0, b.level-1)
	}
}

// sweep forgets the keys whose bucket is empty; if that is not enough, an
// arbitrary half.
func (t *throttle) sweep(now time.Time) {
	for key, b := range t.keys {
		if t.drain(b, now); b.level == 0 {
			delete(t.keys, key)
		}
	}
	for key := range t.keys {
		if len(t.keys) < maxThrottleKeys/2 {
			break
		}
		delete(t.keys, key)
	}
}

// maxLoginsInFlightPerAddr bounds the logins of one address being checked
// at once.
const maxLoginsInFlightPerAddr = 2

// inFlight counts what each key has in flight.
type inFlight struct {
	mu sync.Mutex
	n  map[string]int
}

// enter counts one more for key, unless it has maxLoginsInFlightPerAddr.
func (f *inFlight) enter(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	if f.n[key] >= maxLoginsInFlightPerAddr {
		return false
	}
	f.n[key]++
	return true
}

func (f *inFlight) leave(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[key]--; f.n[key] <= 0 {
		delete(f.n, key)
	}
}
