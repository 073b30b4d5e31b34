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
		opt := flowg.ScanOptions{MaxScan: 1e6, Workers: workers, Fields: []string{"n"}}
		_, err = s.Logs.Scan(ctx, q, opt, func(part int, ts time.Time, f map[string]string) error {
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
	// Only the fields asked for (and the filter's) are decoded; with none
	// asked and an index that answers the filter, the keys answer.
	for _, tc := range []struct {
		filter string
		opt    flowg.ScanOptions
		want   string
		count  int
	}{
		{`level = "error"`, flowg.ScanOptions{Fields: []string{"host"}}, "host", 100},
		{`level = "error"`, flowg.ScanOptions{}, "", 100},
		{`level = "error" and n ~= "^1"`, flowg.ScanOptions{}, "level n", 36}, // 11, 14, 17, 101, 104, ..., 199
		{``, flowg.ScanOptions{}, "", 300},
		{`host = "h1"`, flowg.ScanOptions{AllFields: true}, "host level n", 150},
	} {
		tc.opt.MaxScan, tc.opt.Workers = 1e6, 2
		var mu sync.Mutex
		seen, count := map[string]bool{}, 0
		if _, err := s.Logs.Scan(ctx, flowg.Query{Stream: "app", Filter: mustFilter(t, tc.filter)}, tc.opt, func(_ int, _ time.Time, f map[string]string) error {
			mu.Lock()
			defer mu.Unlock()
			count++
			for k := range f {
				seen[strings.Clone(k)] = true
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for k := range seen {
			names = append(names, k)
		}
		slices.Sort(names)
		if got := strings.Join(names, " "); got != tc.want || count != tc.count {
			t.Errorf("%q %+v: %d records with fields %q, want %d with %q", tc.filter, tc.opt, count, got, tc.count, tc.want)
		}
	}

	// Newest: the latest matching records, as the first page gives them.
	for _, f := range []string{``, `level = "error"`, `n ~= "7"`} {
		page, err := s.Logs.Query(ctx, flowg.Query{Stream: "app", Filter: mustFilter(t, f), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if _, err := s.Logs.Scan(ctx, flowg.Query{Stream: "app", Filter: mustFilter(t, f)}, flowg.ScanOptions{MaxScan: 1e6, Workers: 2, Newest: 10, Fields: []string{"n"}},
			func(_ int, _ time.Time, fl map[string]string) error {
				got = append(got, strings.Clone(fl["n"]))
				return nil
			}); err != nil {
			t.Fatal(err)
		}
		if want := ns(page); !slices.Equal(got, want) {
			t.Errorf("%q newest 10: %v, want %v", f, got, want)
		}
	}

	// The budget holds across parts, and an error from visit stops the scan.
	if _, err := s.Logs.Scan(ctx, flowg.Query{Stream: "app"}, flowg.ScanOptions{MaxScan: 100, Workers: 2}, func(int, time.Time, map[string]string) error { return nil }); !errors.Is(err, flowg.ErrLimit) {
		t.Errorf("over budget: %v", err)
	}
	stop := errors.New("stop")
	if _, err := s.Logs.Scan(ctx, flowg.Query{Stream: "app"}, flowg.ScanOptions{MaxScan: 1000, Workers: 2}, func(int, time.Time, map[string]string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("visit error: %v", err)
	}
	if _, err := s.Logs.Scan(ctx, flowg.Query{Stream: "nope"}, flowg.ScanOptions{MaxScan: 1000, Workers: 2}, nil); !errors.Is(err, flowg.ErrNotFound) {
		t.Errorf("unknown stream: %v", err)
	}
}

func atoi(s string) (n int) {
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
