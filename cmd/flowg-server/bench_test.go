package main

// Benchmarks of the single-node figures: HTTP ingest against the raw Badger
// ceiling, and indexed query latency over a million records. Each benchmark
// does a fixed amount of work and reports its figures as custom metrics, so
// `make bench` runs them once (-benchtime 1x); the targets are in the
// README, never asserted here.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/httpapi"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/store/storetest"
)

// benchRecord is a record of about 250 bytes of names and values, with the
// two indexed fields level and service.
func benchRecord(i int, ts time.Time) flowg.Record {
	return flowg.Record{Timestamp: ts, Fields: map[string]string{
		"level":    []string{"debug", "info", "info", "info", "warn", "error"}[i%6],
		"service":  fmt.Sprintf("svc-%02d", i%20),
		"host":     fmt.Sprintf("web-%03d.eu-west.example.net", i%97),
		"trace_id": fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15),
		"message":  fmt.Sprintf("GET /api/v1/orders/%d?expand=items,customer returned 200 in %d ms for user %d via edge", i, i%997, i%4099),
	}}
}

func openBenchStore(b *testing.B) *store.Store {
	b.Helper()
	st := storetest.Open(b)
	if err := st.Logs.PutSettings(context.Background(), "bench", flowg.StreamSettings{IndexedFields: []string{"level", "service"}}); err != nil {
		b.Fatal(err)
	}
	return st
}

const ingestRecords = 200_000

// BenchmarkIngestVsBadger reports HTTP ingest records/s at batches of 1 and
// 500 (8 concurrent clients over loopback, through JSON parsing, auth, group
// commit and the two indexes) beside two raw Badger ceilings for the same
// keys and values, WriteBatch and one transaction per 500 records, and the
// ratios at batch 500.
func BenchmarkIngestVsBadger(b *testing.B) {
	for b.Loop() {
		raw := rawBadgerRate(b, false)
		b.ReportMetric(raw, "badger-rec/s")
		rawTxn := rawBadgerRate(b, true)
		b.ReportMetric(rawTxn, "badger-txn500-rec/s")
		r500 := httpIngestRate(b, 500, ingestRecords)
		b.ReportMetric(r500, "http500-rec/s")
		r1 := httpIngestRate(b, 1, 20_000)
		b.ReportMetric(r1, "http1-rec/s")
		b.ReportMetric(100*r500/raw, "http500-%-of-badger")
		b.ReportMetric(100*r500/rawTxn, "http500-%-of-badger-txn500")
		fmt.Printf("ingest: raw Badger WriteBatch %.0f rec/s, raw Badger txn per 500 %.0f rec/s; "+
			"HTTP batch 500 %.0f rec/s (%.0f%% of WriteBatch, %.0f%% of txn per 500); HTTP batch 1 %.0f rec/s\n",
			raw, rawTxn, r500, 100*r500/raw, 100*r500/rawTxn, r1)
	}
}

// rawBadgerRate writes ingestRecords records with WriteBatch: one data key
// and two index keys each, with the layout and value encoding the store
// uses, all built before the clock starts.
func rawBadgerRate(b *testing.B, useTxn bool) float64 {
	db, err := badger.Open(badger.DefaultOptions(b.TempDir()).WithLogger(nil).WithMemTableSize(128 << 20).WithNumMemtables(3))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	type entry struct{ key, val []byte }
	entries := make([]entry, 0, 3*ingestRecords)
	base := uint64(time.Now().UnixNano())
	for i := range ingestRecords {
		r := benchRecord(i, time.Time{})
		id := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, base+uint64(i)), uint64(i))
		val, _ := json.Marshal(r.Fields)
		entries = append(entries, entry{append([]byte("dbench\x00"), id...), val})
		for _, f := range []string{"level", "service"} {
			key := fmt.Appendf(nil, "xbench\x00%c%s%c%s", len(f), f, len(r.Fields[f]), r.Fields[f])
			entries = append(entries, entry{append(key, id...), nil})
		}
	}
	start := time.Now()
	if useTxn {
		// One transaction per 500 records, the unit of the HTTP batch.
		for i := 0; i < len(entries); i += 1500 {
			err := db.Update(func(txn *badger.Txn) error {
				for _, e := range entries[i:min(i+1500, len(entries))] {
					if err := txn.Set(e.key, e.val); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		return ingestRecords / time.Since(start).Seconds()
	}
	wb := db.NewWriteBatch()
	for _, e := range entries {
		if err := wb.Set(e.key, e.val); err != nil {
			b.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatal(err)
	}
	return ingestRecords / time.Since(start).Seconds()
}

type benchNode struct {
	st    *store.Store
	srv   *httptest.Server
	token string
}

func newBenchNode(b *testing.B) *benchNode {
	st := openBenchStore(b)
	api, err := httpapi.New(httpapi.Config{Logs: st.Logs, Auth: st.Auth, Cluster: noCluster{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.Public())
	b.Cleanup(srv.Close)
	tok, err := st.Auth.Login(context.Background(), "root", "root")
	if err != nil {
		b.Fatal(err)
	}
	return &benchNode{st: st, srv: srv, token: tok}
}

// ingestBodies are n struct-ingest bodies of batch benchRecords each.
func ingestBodies(n, batch int) [][]byte {
	bodies := make([][]byte, n)
	for i := range bodies {
		var buf bytes.Buffer
		buf.WriteString(`{"records":[`)
		for j := range batch {
			if j > 0 {
				buf.WriteByte(',')
			}
			json.NewEncoder(&buf).Encode(benchRecord(i*batch+j, time.Time{}).Fields)
		}
		buf.WriteString(`]}`)
		bodies[i] = buf.Bytes()
	}
	return bodies
}

func httpIngestRate(b *testing.B, batch, total int) float64 {
	n := newBenchNode(b)
	const clients = 8
	bodies := ingestBodies(16, batch)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := c; i < total/batch; i += clients {
				req, _ := http.NewRequest("POST", n.srv.URL+"/api/v1/streams/bench/logs/struct", bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Authorization", "Bearer "+n.token)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("ingest: %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(total) / time.Since(start).Seconds()
	if got := n.st.Logs.Usage("bench").Records; got != int64(total) {
		b.Fatalf("stored %d records, sent %d", got, total)
	}
	return rate
}

// BenchmarkIndexedQuery loads 1,000,000 records spread over 24 hours and
// reports the latency of the first page (100 records) of a query for one
// service in a random 1-hour window, through the HTTP API.
func BenchmarkIndexedQuery(b *testing.B) {
	for b.Loop() {
		n := newBenchNode(b)
		const total = 1_000_000
		day := 24 * time.Hour
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		loadStart := time.Now()
		batch := make([]flowg.Record, 0, 5000)
		for i := range total {
			batch = append(batch, benchRecord(i, t0.Add(time.Duration(i)*(day/total))))
			if len(batch) == cap(batch) {
				if err := n.st.Logs.Append(context.Background(), "bench", batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		load := time.Since(loadStart)
		rng := rand.New(rand.NewPCG(1, 2))
		var lat []time.Duration
		for q := range 200 {
			from := t0.Add(time.Duration(rng.Int64N(int64(day - time.Hour))))
			params := url.Values{
				"from": {from.Format(time.RFC3339Nano)}, "to": {from.Add(time.Hour).Format(time.RFC3339Nano)},
				"filter": {fmt.Sprintf(`service = "svc-%02d"`, q%20)}, "limit": {"100"},
			}
			req, _ := http.NewRequest("GET", n.srv.URL+"/api/v1/streams/bench/logs?"+params.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+n.token)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(start))
			if resp.StatusCode != 200 || strings.Count(string(body), `"timestamp"`) != 100 {
				b.Fatalf("query %v: %d, %d records: %.300s", params, resp.StatusCode, strings.Count(string(body), `"timestamp"`), body)
			}
		}
		slices.Sort(lat)
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(total/load.Seconds(), "load-rec/s")
		fmt.Printf("query: 1h window, service = \"svc-NN\", first page of 100 over %d records: p50 %.2f ms, p99 %.2f ms (loaded at %.0f rec/s)\n",
			total, float64(p50.Microseconds())/1000, float64(p99.Microseconds())/1000, total/load.Seconds())
	}
}

// noCluster is the cluster view of a benchmark's lone API.
type noCluster struct{}

func (noCluster) Nodes() []flowg.Node { return nil }
