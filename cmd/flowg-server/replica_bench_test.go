package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchBin is flowg-server built without the race detector, for figures.
func benchBin(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "flowg-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// withBin runs the nodes of fn from bin.
func withBin(bin string, fn func()) {
	saved := serverBin
	serverBin = bin
	defer func() { serverBin = saved }()
	fn()
}

// metricsText is a node's /metrics.
func metricsText(tb testing.TB, p *proc) string {
	tb.Helper()
	resp, err := http.Get("http://" + p.mgmt + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric sums the samples of a metric on a node's /metrics.
func metric(tb testing.TB, p *proc, name string) float64 {
	tb.Helper()
	b := metricsText(tb, p)
	sum := 0.0
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+-]+)$`)
	for _, m := range re.FindAllStringSubmatch(b, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
	}
	return sum
}

// tail follows a node's live tail of stream and calls fn with each record's
// fields as it arrives.
func tail(tb testing.TB, p *proc, token, stream string, fn func(map[string]string)) (stop func()) {
	req, _ := http.NewRequest("GET", "http://"+p.http+"/api/v1/streams/"+stream+"/logs/watch", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		tb.Fatalf("watch: %v %v", err, resp)
	}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var r struct{ Fields map[string]string }
			if json.Unmarshal([]byte(line), &r) == nil && r.Fields != nil {
				fn(r.Fields)
			}
		}
	}()
	return func() { resp.Body.Close() }
}

// BenchmarkReplication measures, over three real processes: the lag from
// a record's ingest on one node to its arrival in the live tail of each of
// the two others, under 5,000 records/s spread over the three; bytes on
// the wire per replicated record against the record's stored size; idle
// replication traffic once nothing is left to send; and the catch-up rate
// of a new node joining a cluster that holds 1,000,000 records.
// Targets: lag p99 <= 1 s; wire <= 1.5x record bytes; catch-up >= 50,000
// records/s; idle traffic near zero.
func BenchmarkReplication(b *testing.B) {
	bin := benchBin(b)
	for range b.N {
		withBin(bin, func() { benchLag(b) })
		withBin(bin, func() { benchCatchUp(b) })
	}
}

func benchLag(b *testing.B) {
	nodes := threeNodes(b, b.TempDir())
	tok := make([]string, 3)
	for i, n := range nodes {
		tok[i] = n.login("root", "root")
	}
	// The stream exists everywhere before the tails start.
	nodes[0].request(tok[0], "POST", "/api/v1/streams/bench/logs/struct", `{"records":[{"n":"warm"}]}`)
	time.Sleep(time.Second)
	var mu sync.Mutex
	var lags []time.Duration
	for i, n := range nodes {
		self := strconv.Itoa(i)
		stop := tail(b, n, tok[i], "bench", func(f map[string]string) {
			if f["origin"] == self || f["sent"] == "" {
				return
			}
			ns, _ := strconv.ParseInt(f["sent"], 10, 64)
			mu.Lock()
			lags = append(lags, time.Since(time.Unix(0, ns)))
			mu.Unlock()
		})
		defer stop()
	}
	const rate, seconds, batch = 5000, 10, 50
	pad := strings.Repeat("x", 160) // records of about 250 bytes
	var wg sync.WaitGroup
	var reqs []time.Duration // ingest request latency: committed here and held by another node
	interval := time.Duration(float64(time.Second) * batch * 3 / rate)
	for i, n := range nodes {
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for range seconds * rate / batch / 3 {
				<-tick.C
				recs := make([]string, batch)
				sent := time.Now().UnixNano()
				for k := range recs {
					recs[k] = fmt.Sprintf(`{"origin":"%d","sent":"%d","service":"svc-%02d","level":"info","message":%q}`, i, sent, k%20, pad)
				}
				t0 := time.Now()
				n.request(tok[i], "POST", "/api/v1/streams/bench/logs/struct", `{"records":[`+strings.Join(recs, ",")+`]}`)
				mu.Lock()
				reqs = append(reqs, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	total := seconds * rate / batch / 3 * batch * 3
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(lags)
		mu.Unlock()
		if got >= 2*total || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	sorted := slices.Clone(lags)
	mu.Unlock()
	slices.Sort(sorted)
	if len(sorted) < 2*total {
		b.Errorf("%d of %d replicated records reached the tails", len(sorted), 2*total)
	}
	if len(sorted) == 0 {
		return
	}
	p := func(q float64) time.Duration { return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))] }
	b.Logf("replication lag, ingest to the tail of another node, %d records at %d/s over 3 nodes: p50 %s, p99 %s, max %s",
		len(sorted), rate, p(0.5), p(0.99), sorted[len(sorted)-1])
	b.ReportMetric(float64(p(0.5).Microseconds())/1000, "lag-p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "lag-p99-ms")
	mu.Lock()
	slices.Sort(reqs)
	mu.Unlock()
	b.Logf("ingest requests of %d records, answered once held by two nodes: p50 %s, p99 %s",
		batch, reqs[len(reqs)/2], reqs[min(len(reqs)-1, len(reqs)*99/100)])
	b.ReportMetric(float64(reqs[len(reqs)/2].Microseconds())/1000, "ingest-p50-ms")

	// Bytes on the wire per replicated record, against its stored size.
	var wire, applied, stored, records float64
	for _, n := range nodes {
		// Counted by the node that makes each request: its body and the answer's.
		wire += metric(b, n, "flowg_replication_bytes_total")
		applied += metric(b, n, "flowg_replication_records_applied_total")
	}
	stored, records = metric(b, nodes[0], "flowg_stream_bytes"), metric(b, nodes[0], "flowg_stream_records")
	perRecord, storedPer := wire/applied, stored/records
	b.Logf("wire %.0f bytes per replicated record (request and answer bodies), stored %.0f bytes per record: %.2fx", perRecord, storedPer, perRecord/storedPer)
	b.ReportMetric(perRecord/storedPer, "wire/stored")

	// Idle: nothing new to send.
	time.Sleep(2 * time.Second)
	before := 0.0
	for _, n := range nodes {
		before += metric(b, n, "flowg_replication_bytes_total")
	}
	const idle = 30 * time.Second
	time.Sleep(idle)
	after := 0.0
	for _, n := range nodes {
		after += metric(b, n, "flowg_replication_bytes_total")
	}
	perNode := (after - before) / 3 / idle.Seconds()
	b.Logf("idle replication traffic: %.1f bytes/s per node (bodies; long polls of 25 s and a digest round every 5 s)", perNode)
	b.ReportMetric(perNode, "idle-B/s/node")
}

func benchCatchUp(b *testing.B) {
	dir := b.TempDir()
	// A cluster of two that holds 1,000,000 records, half taken by each.
	nodes := nodesOf(b, 2, dir, nil)
	const total, batch = 1_000_000, 1000
	pad := strings.Repeat("x", 160)
	loadStart := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		n := nodes[w%2]
		tok := n.login("root", "root")
		wg.Go(func() {
			for j := w; j < total/batch; j += 4 {
				recs := make([]string, batch)
				for k := range recs {
					recs[k] = fmt.Sprintf(`{"n":"%d","service":"svc-%02d","message":%q}`, j*batch+k, k%20, pad)
				}
				if code, body := n.request(tok, "POST", "/api/v1/streams/bench/logs/struct", `{"records":[`+strings.Join(recs, ",")+`]}`); code != 200 {
					b.Errorf("load: %d %s", code, body)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, n := range nodes {
		for metric(b, n, "flowg_stream_records") < total {
			time.Sleep(50 * time.Millisecond)
		}
	}
	b.Logf("loaded %d records into a cluster of two (half on each, both holding all) in %s", total, time.Since(loadStart).Round(time.Millisecond))

	httpAddr, mgmtAddr := freeAddr(b), freeAddr(b)
	joinAt := time.Now()
	n2 := start(b, dir, nil, httpAddr, mgmtAddr, append(nodeArgs(dir, 2, httpAddr, mgmtAddr),
		"--cluster-join-node-id", "n0", "--cluster-join-endpoint", "http://"+nodes[0].mgmt)...)
	for metric(b, n2, "flowg_replication_records_applied_total") < total {
		if time.Since(joinAt) > 10*time.Minute {
			b.Fatalf("n2 holds %.0f of %d records after 10 minutes", metric(b, n2, "flowg_replication_records_applied_total"), total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(joinAt)
	b.Logf("a new node caught up with %d records in %s (from its start): %.0f records/s", total, took.Round(time.Millisecond), total/took.Seconds())
	b.ReportMetric(total/took.Seconds(), "catchup-rec/s")
}

// BenchmarkClusterIngest measures HTTP ingest into a 3-node cluster on this
// one machine: 8 clients spread over the nodes send batches of 500 records
// of about 250 bytes; each answer waits for a second copy, and every record
// ends up stored three times. It reports the acknowledged rate and the
// rate at which all three nodes hold everything.
func BenchmarkClusterIngest(b *testing.B) {
	bin := benchBin(b)
	for range b.N {
		withBin(bin, func() {
			nodes := threeNodes(b, b.TempDir())
			tok := make([]string, 3)
			for i, n := range nodes {
				tok[i] = n.login("root", "root")
			}
			const total, batch, clients = 300_000, 500, 8
			pad := strings.Repeat("x", 160)
			start := time.Now()
			var wg sync.WaitGroup
			for c := range clients {
				wg.Go(func() {
					n := c % 3
					for j := c; j < total/batch; j += clients {
						recs := make([]string, batch)
						for k := range recs {
							recs[k] = fmt.Sprintf(`{"n":"%d","service":"svc-%02d","message":%q}`, j*batch+k, k%20, pad)
						}
						if code, body := nodes[n].request(tok[n], "POST", "/api/v1/streams/bench/logs/struct", `{"records":[`+strings.Join(recs, ",")+`]}`); code != 200 {
							b.Errorf("ingest: %d %s", code, body)
							return
						}
					}
				})
			}
			wg.Wait()
			acked := time.Since(start)
			for _, n := range nodes {
				for metric(b, n, "flowg_stream_records") < total {
					time.Sleep(20 * time.Millisecond)
				}
			}
			everywhere := time.Since(start)
			single := 0.0
			for _, n := range nodes {
				single += metric(b, n, "flowg_ingest_single_copy_acks_total")
			}
			b.Logf("3-node cluster, %d records in batches of %d from %d clients: acknowledged at %.0f records/s, on all three nodes at %.0f records/s; %.0f answers with a single copy",
				total, batch, clients, total/acked.Seconds(), total/everywhere.Seconds(), single)
			b.ReportMetric(total/acked.Seconds(), "acked-rec/s")
			b.ReportMetric(total/everywhere.Seconds(), "everywhere-rec/s")
		})
	}
}
