package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/internal/lokitest"
	"github.com/klauspost/compress/gzip"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// BenchmarkShippers measures ingest of the same records (~250 B, nine
// fields: job and source, as labels or resource attributes where the
// protocol has them, level, service of 20, host of 50, http.status,
// latency, a trace ID, a message)
// through the JSON API (batches of 500), OTLP/HTTP protobuf (gzip, batches
// of 2,000, as a collector's batch processor sends) and Loki push (snappy
// protobuf, batches of 2,000, as Promtail and Alloy send), in alternating
// rounds, each on a fresh node, per server CPU-second (the CPU until the
// node is idle again, compactions included), with each protocol's ratio
// to the JSON API of the same run (target ≥ 0.9).
func BenchmarkShippers(b *testing.B) {
	bin := benchBin(b)
	for range b.N {
		withBin(bin, func() {
			const perRound, clients = 200_000, 4
			rec := func(i int) (level, service, host, status, latency, trace, msg string) {
				levels := []string{"info", "info", "info", "warn", "error"}
				return levels[i%5], fmt.Sprintf("svc-%02d", i%20), fmt.Sprintf("host-%02d", i%50), fmt.Sprint(200 + i%5*100),
					fmt.Sprint(i % 1000), fmt.Sprintf("%032x", i*7919), fmt.Sprintf("request %d handled for user u-%d in the checkout path", i, i%977)
			}
			jsonBatch := func(from, n int) ([]byte, http.Header) {
				parts := make([]string, n)
				for k := range n {
					lv, sv, h, st, la, tr, m := rec(from + k)
					parts[k] = fmt.Sprintf(`{"job":"bench","source":"json","level":%q,"service":%q,"host":%q,"http.status":%q,"latency_ms":%q,"trace_id":%q,"message":%q}`, lv, sv, h, st, la, tr, m)
				}
				return []byte(`{"records":[` + strings.Join(parts, ",") + `]}`), http.Header{"Content-Type": {"application/json"}}
			}
			otlpBatch := func(from, n int) ([]byte, http.Header) {
				ld := plog.NewLogs()
				rl := ld.ResourceLogs().AppendEmpty()
				rl.Resource().Attributes().PutStr("job", "bench")
				rl.Resource().Attributes().PutStr("source", "otlp")
				lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
				for k := range n {
					lv, sv, h, st, la, tr, m := rec(from + k)
					lr := lrs.AppendEmpty()
					lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
					lr.Body().SetStr(m)
					a := lr.Attributes()
					a.PutStr("level", lv)
					a.PutStr("service", sv)
					a.PutStr("host", h)
					a.PutStr("http.status", st)
					a.PutStr("latency_ms", la)
					var tid pcommon.TraceID
					copy(tid[:], tr)
					lr.SetTraceID(tid)
				}
				raw, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write(raw)
				zw.Close()
				return buf.Bytes(), http.Header{"Content-Type": {"application/x-protobuf"}, "Content-Encoding": {"gzip"}, "X-Flowg-Stream": {"otlp"}}
			}
			lokiBatch := func(from, n int) ([]byte, http.Header) {
				st := lokitest.Stream{Labels: `{job="bench", source="loki"}`}
				for k := range n {
					lv, sv, h, status, la, tr, m := rec(from + k)
					st.Entries = append(st.Entries, lokitest.Entry{Time: time.Now(), Line: m, Metadata: [][2]string{
						{"level", lv}, {"service", sv}, {"host", h}, {"http.status", status}, {"latency_ms", la}, {"trace_id", tr}}})
				}
				return lokitest.Push(st), http.Header{"Content-Type": {"application/x-protobuf"}, "X-Flowg-Stream": {"loki"}}
			}
			type proto struct {
				name, path string
				batch      int
				build      func(int, int) ([]byte, http.Header)
			}
			protos := []proto{
				{"json", "/api/v1/streams/json/logs/struct", 500, jsonBatch},
				{"otlp", "/v1/logs", 2000, otlpBatch},
				{"loki", "/loki/api/v1/push", 2000, lokiBatch},
			}
			// Bodies are built before the clock starts.
			bodies := map[string][][]byte{}
			headers := map[string]http.Header{}
			for _, p := range protos {
				for from := 0; from < perRound; from += p.batch {
					body, h := p.build(from, p.batch)
					bodies[p.name] = append(bodies[p.name], body)
					headers[p.name] = h
				}
			}
			// Each round on a fresh node: an LSM tree costs more to write as it
			// grows, so rounds in turn on one node would favour the first.
			round := func(p proto) (rate, perCPU float64) {
				dir := b.TempDir()
				httpAddr, mgmtAddr := freeAddr(b), freeAddr(b)
				n := start(b, dir, nil, httpAddr, mgmtAddr, append(nodeArgs(dir, 0, httpAddr, mgmtAddr), "--ingest-copy-timeout", "0", "--mgmt-pprof")...)
				defer func() { n.cmd.Process.Kill(); n.wait() }()
				tok := n.login("root", "root")
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
				cpu0 := cpuSeconds(b, n.cmd.Process.Pid)
				t0 := time.Now()
				var wg sync.WaitGroup
				for c := range clients {
					wg.Go(func() {
						for j := c; j < len(bodies[p.name]); j += clients {
							req, _ := http.NewRequest("POST", "http://"+httpAddr+p.path, bytes.NewReader(bodies[p.name][j]))
							req.Header = headers[p.name].Clone()
							req.Header.Set("Authorization", "Bearer "+tok)
							resp, err := client.Do(req)
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode/100 != 2 {
								b.Errorf("%s: %s", p.name, resp.Status)
								return
							}
						}
					})
				}
				wg.Wait()
				took := time.Since(t0).Seconds()
				// The CPU the round leaves behind (Badger's compactions of what it
				// wrote) is the round's: wait until the node is idle, up to 15 s.
				last := cpuSeconds(b, n.cmd.Process.Pid)
				for idle := time.Now().Add(15 * time.Second); time.Now().Before(idle); {
					time.Sleep(500 * time.Millisecond)
					now := cpuSeconds(b, n.cmd.Process.Pid)
					if now-last < 0.05 {
						break
					}
					last = now
				}
				cpu := last - cpu0
				return perRound / took, perRound / cpu
			}
			sum := map[string][2]float64{}
			for cycle := range 2 {
				for i := range protos {
					p := protos[(i+cycle)%len(protos)]
					r, c := round(p)
					s := sum[p.name]
					sum[p.name] = [2]float64{s[0] + r/2, s[1] + c/2}
				}
			}
			for _, p := range protos {
				b.ReportMetric(sum[p.name][0], p.name+"_rec/s")
				b.ReportMetric(sum[p.name][1], p.name+"_rec/cpu_s")
			}
			b.ReportMetric(sum["otlp"][1]/sum["json"][1], "otlp/json_per_cpu")
			b.ReportMetric(sum["loki"][1]/sum["json"][1], "loki/json_per_cpu")
		})
	}
}
