package store

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/filter"
	"github.com/flowg-server/flowg-server/internal/dataset"
)

// BenchmarkBlockPage: the newest page of 100 and an indexed page over
// 200,000 seeded records, sealed into blocks, against the same records
// kept as rows, in the same run.
func BenchmarkBlockPage(b *testing.B) {
	ctx := context.Background()
	to := time.Now().UTC().Truncate(time.Minute)
	for _, sealed := range []bool{false, true} {
		c := testConfig(&testing.T{}, b.TempDir())
		c.SealAfter = 0
		s, err := Open(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		s.Logs.PutSettings(ctx, "bench", flowg.StreamSettings{IndexedFields: []string{"level", "service"}})
		g := dataset.New(1, 200_000, to.Add(-24*time.Hour/10), to)
		var recs []flowg.Record
		for {
			r, ok := g.Next()
			if !ok {
				break
			}
			recs = append(recs, flowg.Record{Timestamp: r.Time, Fields: map[string]string{
				"timestamp": r.Time.UTC().Format(time.RFC3339Nano), "level": r.Level, "service": r.Service, "host": r.Host,
				"http.status": strconv.Itoa(r.Status), "latency": strconv.FormatFloat(r.Latency, 'f', -1, 64), "trace_id": r.TraceID, "message": r.Message}})
			if len(recs) == 500 {
				if err := s.Logs.Append(ctx, "bench", recs); err != nil {
					b.Fatal(err)
				}
				recs = nil
			}
		}
		if sealed {
			if err := s.Logs.Seal(ctx); err != nil {
				b.Fatal(err)
			}
			var blocks, bytes, entries int
			s.Logs.db.View(func(txn *badger.Txn) error {
				for _, prefix := range [][]byte{blockPrefix("bench"), blockIndexPrefix("bench")} {
					it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
					for it.Rewind(); it.Valid(); it.Next() {
						if prefix[0] == prefixBlock {
							blocks++
						} else {
							entries++
						}
						bytes += len(it.Item().Key()) + int(it.Item().ValueSize())
					}
					it.Close()
				}
				return nil
			})
			b.Logf("%d blocks of up to %d records, %d index entries: %.1f B a record", blocks, maxBlockRecords, entries, float64(bytes)/200_000)
		}
		for _, q := range []flowg.Query{
			{Stream: "bench", Limit: 100},
			{Stream: "bench", Limit: 100, Filter: mustFilterB(`level = "error"`), From: to.Add(-time.Hour)},
			{Stream: "bench", Limit: 100, Filter: mustFilterB(`message has "insufficient funds"`), From: to.Add(-time.Hour)},
		} {
			b.Run(fmt.Sprintf("sealed=%v/%s", sealed, q.Filter), func(b *testing.B) {
				d0 := blocksDecoded.Load()
				defer func() { b.ReportMetric(float64(blocksDecoded.Load()-d0)/float64(b.N), "blocks/op") }()
				for b.Loop() {
					if _, err := s.Logs.Query(ctx, q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("sealed=%v/scan errors by service", sealed), func(b *testing.B) {
			q := flowg.Query{Stream: "bench", Filter: mustFilterB(`level = "error"`)}
			for b.Loop() {
				counts := [2]map[string]int{{}, {}}
				opt := flowg.ScanOptions{MaxScan: 1e9, Workers: 2, Fields: []string{"service"}, VisitBatch: func(part int, b flowg.Batch) error {
					vals, codes, _ := b.Dict("service")
					for _, c := range codes {
						if c > 0 {
							counts[part][vals[c-1]]++
						}
					}
					return nil
				}}
				_, err := s.Logs.Scan(ctx, q, opt, func(part int, _ time.Time, f map[string]string) error {
					counts[part][f["service"]]++
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		s.Close()
	}
}

func mustFilterB(s string) *filter.Filter {
	f, err := filter.Parse(s)
	if err != nil {
		panic(err)
	}
	return f
}
