package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	flowg "github.com/flowg-server/flowg-server"
)

// TestScan_AgreesWithQuery checks that Scan, cut into parts, visits each
// record of a window exactly once, through the index or not, against the
// pages of Query.
func TestScan_AgreesWithQuery(t *testing.T) {
	s := openTest(t, t.TempDir())
	appendN(t, s, "app", 300) // n 0..299 at t0+n s; level by n%3, indexed
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range 40 {
		q := flowg.Query{Stream: "app", Filter: mustFilter(t, []string{``, `level = "error"`, `level = "error" and n ~= "1"`, `n >= 250`}[i%4])}
		if rng.IntN(3) > 0 {
			q.From = t0.Add(time.Duration(rng.IntN(320)-10) * time.Second)
		}
		if rng.IntN(3) > 0 {
			q.To = q.From.Add(time.Duration(1+rng.IntN(200)) * time.Second)
		}
		q.Limit = 1000
		page, err := s.Logs.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want := ns(page)
		var mu sync.Mutex
		var got []string
		workers := 1 + rng.IntN(4)
		_, err = s.Logs.Scan(ctx, q, 1e6, workers, func(part int, ts time.Time, f map[string]string) error {
			if part < 0 || part >= workers || !ts.Equal(t0.Add(time.Duration(atoi(f["n"]))*time.Second)) {
				t.Errorf("part %d of %d, record %v at %v", part, workers, f, ts)
			}
			mu.Lock()
			got = append(got, strings.Clone(f["n"]))
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%+v in %d parts: scan %v, query %v", q, workers, got, want)
		}
	}
	// The budget holds across parts, and an error from visit stops the scan.
	if _, err := s.Logs.Scan(ctx, flowg.Query{Stream: "app"}, 100, 2, func(int, time.Time, map[string]string) error { return nil }); !errors.Is(err, flowg.ErrLimit) {
		t.Errorf("over budget: %v", err)
	}
	stop := errors.New("stop")
	if _, err := s.Logs.Scan(ctx, flowg.Query{Stream: "app"}, 1000, 2, func(int, time.Time, map[string]string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("visit error: %v", err)
	}
	if _, err := s.Logs.Scan(ctx, flowg.Query{Stream: "nope"}, 1000, 2, nil); !errors.Is(err, flowg.ErrNotFound) {
		t.Errorf("unknown stream: %v", err)
	}
}

func atoi(s string) (n int) {
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
