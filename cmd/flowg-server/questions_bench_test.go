package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/internal/dataset"
)

// victoriaLogs is the path of the VictoriaLogs binary, built once from the
// Go module proxy and cached (scripts/victorialogs.sh).
func victoriaLogs(b *testing.B) string {
	b.Helper()
	out, err := exec.Command("bash", "../../scripts/victorialogs.sh").Output()
	if err != nil {
		b.Fatalf("scripts/victorialogs.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// vlProc is a running VictoriaLogs.
type vlProc struct {
	cmd  *exec.Cmd
	addr string
}

func startVictoriaLogs(b *testing.B, bin, dir string) *vlProc {
	b.Helper()
	addr := freeAddr(b)
	cmd := exec.Command(bin, "-storageDataPath="+filepath.Join(dir, "vl"), "-httpListenAddr="+addr, "-loggerLevel=ERROR", "-retentionPeriod=100y")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	eventually(b, 20*time.Second, "VictoriaLogs answers /health", func() bool {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return &vlProc{cmd, addr}
}

// post sends the bodies to url from clients at once, headers on each.
func postAll(b *testing.B, url string, bodies [][]byte, clients int, header http.Header) {
	b.Helper()
	var wg sync.WaitGroup
	var next sync.Mutex
	i := 0
	for range clients {
		wg.Go(func() {
			for {
				next.Lock()
				j := i
				i++
				next.Unlock()
				if j >= len(bodies) {
					return
				}
				req, _ := http.NewRequest("POST", url, bytes.NewReader(bodies[j]))
				req.Header = header.Clone()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					b.Errorf("POST %s: %s", url, resp.Status)
					return
				}
			}
		})
	}
	wg.Wait()
}

// datasetBodies are the NDJSON bodies of total seeded records over
// [from, to), batch records each, and their bytes in all.
func datasetBodies(seed uint64, total, batch int, from, to time.Time) (bodies [][]byte, raw int) {
	gen := dataset.New(seed, total, from, to)
	for {
		var body []byte
		for range batch {
			rec, ok := gen.Next()
			if !ok {
				break
			}
			body = append(rec.AppendJSON(body), '\n')
		}
		if len(body) == 0 {
			return bodies, raw
		}
		raw += len(body)
		bodies = append(bodies, body)
	}
}

// waitIdle waits until a process uses less than 5% of a core, up to limit.
func waitIdle(b *testing.B, pid int, limit time.Duration) {
	last := cpuSeconds(b, pid)
	for end := time.Now().Add(limit); time.Now().Before(end); {
		time.Sleep(time.Second)
		now := cpuSeconds(b, pid)
		if now-last < 0.05 {
			return
		}
		last = now
	}
}

// BenchmarkQuestions loads flowg-server and VictoriaLogs with the same
// 2,000,000 seeded records (internal/dataset) spread over one day, and
// reports each one's ingest records per CPU-second, peak RSS and settled
// disk bytes per record, and the latency of the five query shapes of a log
// store (a page of 100: indexed equality, a regex and a phrase on the
// message over the last hour, the newest 100 of everything; a count over
// the whole range). It asks both the same questions: errors per service over the whole range, a per-minute histogram of
// the day, p99 latency per service, the top 10 hosts. Each question is
// asked 9 times of each server in alternation after one warm-up; it reports
// p50 and p99 latency and server CPU per question, and flowg's p50 as a
// ratio of VictoriaLogs' (target ≤ 1.0). The answers are checked against
// each other: the same counts per service.
func BenchmarkQuestions(b *testing.B) {
	vlBin := victoriaLogs(b)
	bin := benchBin(b)
	for range b.N {
		withBin(bin, func() { benchQuestions(b, vlBin) })
	}
}

func benchQuestions(b *testing.B, vlBin string) {
	const total, batch = 2_000_000, 500
	to := time.Now().UTC().Truncate(time.Minute)
	from := to.Add(-24 * time.Hour)
	bodies, raw := datasetBodies(1, total, batch, from, to)

	dir := b.TempDir()
	httpAddr, mgmtAddr := freeAddr(b), freeAddr(b)
	fl := start(b, dir, nil, httpAddr, mgmtAddr, nodeArgs(dir, 0, httpAddr, mgmtAddr)...)
	tok := fl.login("root", "root")
	// The layout before blocks, in the same run: every record a row.
	oldHTTP, oldMgmt := freeAddr(b), freeAddr(b)
	old := start(b, dir, nil, oldHTTP, oldMgmt, append(nodeArgs(dir, 1, oldHTTP, oldMgmt), "--log-seal-after=0")...)
	oldTok := old.login("root", "root")
	vl := startVictoriaLogs(b, vlBin, dir)

	// Ingest, each server alone, its CPU counted until it is idle again
	// (compactions included).
	flPid, vlPid := fl.cmd.Process.Pid, vl.cmd.Process.Pid
	cpu0 := cpuSeconds(b, flPid)
	t0 := time.Now()
	postAll(b, "http://"+httpAddr+"/api/v1/streams/bench/logs/struct", bodies, 8,
		http.Header{"Content-Type": {"application/x-ndjson"}, "Authorization": {"Bearer " + tok}})
	flIngest := time.Since(t0)
	waitIdle(b, flPid, 60*time.Second)
	flCPU := cpuSeconds(b, flPid) - cpu0
	oldPid := old.cmd.Process.Pid
	cpu0 = cpuSeconds(b, oldPid)
	postAll(b, "http://"+oldHTTP+"/api/v1/streams/bench/logs/struct", bodies, 8,
		http.Header{"Content-Type": {"application/x-ndjson"}, "Authorization": {"Bearer " + oldTok}})
	waitIdle(b, oldPid, 60*time.Second)
	oldCPU := cpuSeconds(b, oldPid) - cpu0
	cpu0 = cpuSeconds(b, vlPid)
	t0 = time.Now()
	postAll(b, "http://"+vl.addr+"/insert/jsonline?_time_field=timestamp&_msg_field=message&_stream_fields=service", bodies, 8, http.Header{})
	vlIngest := time.Since(t0)
	if resp, err := http.Get("http://" + vl.addr + "/internal/force_flush"); err == nil {
		resp.Body.Close()
	}
	waitIdle(b, vlPid, 60*time.Second)
	vlCPU := cpuSeconds(b, vlPid) - cpu0
	bodies = nil
	flRSS, oldRSS, vlRSS := peakRSS(b, flPid), peakRSS(b, oldPid), peakRSS(b, vlPid)
	fmt.Printf("questions: %d records (%d B of NDJSON each on average) over one day\n", total, raw/total)
	fmt.Printf("ingest: flowg-server %.1f s, %.0f records per CPU-second (sealing included), peak RSS %d MiB; rows only (the layout before blocks) %.0f records per CPU-second, peak RSS %d MiB; VictoriaLogs %.1f s, %.0f records per CPU-second, peak RSS %d MiB; per CPU-second %.2f× VictoriaLogs, %.2f× rows only\n",
		flIngest.Seconds(), total/flCPU, flRSS>>20, total/oldCPU, oldRSS>>20, vlIngest.Seconds(), total/vlCPU, vlRSS>>20, vlCPU/flCPU, oldCPU/flCPU)
	defer func() {
		// Disk, settled: each server stopped cleanly (Badger flushes its
		// memtables to tables), every file of its data directory counted
		// by the blocks it holds.
		fl.cmd.Process.Signal(os.Interrupt)
		fl.wait()
		old.cmd.Process.Signal(os.Interrupt)
		old.wait()
		vl.cmd.Process.Signal(os.Interrupt)
		vl.cmd.Wait()
		flDisk, oldDisk, vlDisk := diskBytes(b, filepath.Join(dir, "n0", "logs")), diskBytes(b, filepath.Join(dir, "n1", "logs")), diskBytes(b, filepath.Join(dir, "vl"))
		fmt.Printf("disk per record: flowg-server %.1f B (%.2f of the NDJSON), rows only %.1f B (%.2f), VictoriaLogs %.1f B (%.2f); %.2f× VictoriaLogs, %.2f× rows only\n",
			float64(flDisk)/total, float64(flDisk)/float64(raw), float64(oldDisk)/total, float64(oldDisk)/float64(raw),
			float64(vlDisk)/total, float64(vlDisk)/float64(raw), float64(flDisk)/float64(vlDisk), float64(flDisk)/float64(oldDisk))
		b.ReportMetric(float64(flDisk)/total, "flowg-disk-B/record")
		b.ReportMetric(float64(flDisk)/float64(vlDisk), "disk-vs-vlogs")
	}()

	window := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	hour := url.Values{"from": {to.Add(-time.Hour).Format(time.RFC3339)}, "to": window["to"]}
	// The questions, then the five query shapes of a log store: pages of
	// records (flowg-server's /logs, VictoriaLogs with limit=100).
	questions := []struct {
		name   string
		path   string // stats or logs
		flowg  url.Values
		logsQL string
		hour   bool // over the last hour, else the day
	}{
		{"errors per service", "stats", url.Values{"filter": {`level = "error"`}, "by": {"service"}}, `level:=error | stats by (service) count() as n`, false},
		{"per-minute histogram of the day", "stats", url.Values{"step": {"1m"}}, `* | stats by (_time:1m) count() as n`, false},
		{"p99 latency per service", "stats", url.Values{"by": {"service"}, "stats": {"p99(latency)"}}, `* | stats by (service) quantile(0.99, latency) as p99`, false},
		{"top 10 hosts", "stats", url.Values{"by": {"host"}, "top": {"10"}}, `* | top 10 (host)`, false},
		{"indexed equality, 1 h, 100", "logs", url.Values{"filter": {`level = "error"`}}, `level:=error`, true},
		{"regex on message, 1 h, 100", "logs", url.Values{"filter": {`message ~= "refused .* db-12"`}}, `_msg:~"refused .* db-12"`, true},
		{"phrase on message, 1 h, 100", "logs", url.Values{"filter": {`message has "insufficient funds"`}}, `"insufficient funds"`, true},
		{"newest 100 of everything", "logs", url.Values{}, `*`, false},
		{"count over the whole range", "stats", url.Values{}, `* | stats count() as n`, false},
	}
	askFlowgAt := func(p *proc, tok, path string, q url.Values, hourly bool) []byte {
		w := window
		if hourly {
			w = hour
		}
		for k, v := range w {
			q[k] = v
		}
		if path == "logs" {
			q.Set("limit", "100")
		}
		code, body := p.request(tok, "GET", "/api/v1/streams/bench/"+path+"?"+q.Encode(), "")
		if code != 200 {
			b.Fatalf("flowg-server %v: %d %s", q, code, body)
		}
		return body
	}
	askFlowg := func(path string, q url.Values, hourly bool) []byte { return askFlowgAt(fl, tok, path, q, hourly) }
	askVL := func(logsQL string, page, hourly bool) []byte {
		w := window
		if hourly {
			w = hour
		}
		q := url.Values{"query": {logsQL}, "start": w["from"], "end": w["to"]}
		if page {
			q.Set("limit", "100")
		}
		resp, err := http.Get("http://" + vl.addr + "/select/logsql/query?" + q.Encode())
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			b.Fatalf("VictoriaLogs %s: %s %s", logsQL, resp.Status, body)
		}
		return body
	}
	const rounds = 9
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("questions: load average %s", load)
	fmt.Printf("%-34s %28s %28s %8s %22s %8s\n", "question", "flowg-server p50/p99 (CPU)", "VictoriaLogs p50/p99 (CPU)", "p50 ×", "rows only p50 (CPU)", "p50 ×")
	for qi, q := range questions {
		page := q.path == "logs"
		askFlowg(q.path, q.flowg, q.hour)
		askVL(q.logsQL, page, q.hour) // warm-up
		askFlowgAt(old, oldTok, q.path, q.flowg, q.hour)
		var flLat, vlLat, oldLat []time.Duration
		var flCPU, vlCPU, oldCPU float64
		var flAns, vlAns []byte
		for range rounds {
			c := cpuSeconds(b, fl.cmd.Process.Pid)
			t := time.Now()
			flAns = askFlowg(q.path, q.flowg, q.hour)
			flLat = append(flLat, time.Since(t))
			flCPU += cpuSeconds(b, fl.cmd.Process.Pid) - c
			c = cpuSeconds(b, vl.cmd.Process.Pid)
			t = time.Now()
			vlAns = askVL(q.logsQL, page, q.hour)
			vlLat = append(vlLat, time.Since(t))
			vlCPU += cpuSeconds(b, vl.cmd.Process.Pid) - c
			c = cpuSeconds(b, oldPid)
			t = time.Now()
			oldAns := askFlowgAt(old, oldTok, q.path, q.flowg, q.hour)
			oldLat = append(oldLat, time.Since(t))
			if q.path == "stats" && !sameStats(flAns, oldAns) {
				b.Errorf("%s: blocks answer %s, rows only %s", q.name, flAns, oldAns)
			}
			oldCPU += cpuSeconds(b, oldPid) - c
		}
		slices.Sort(flLat)
		slices.Sort(vlLat)
		slices.Sort(oldLat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		ratio := float64(flLat[rounds/2]) / float64(vlLat[rounds/2])
		oldRatio := float64(flLat[rounds/2]) / float64(oldLat[rounds/2])
		fmt.Printf("%-34s %10.1f/%6.1f ms (%4.0f ms) %10.1f/%6.1f ms (%4.0f ms) %7.2f× %12.1f ms (%4.0f ms) %7.2f×\n", q.name,
			ms(flLat[rounds/2]), ms(flLat[rounds-1]), flCPU/rounds*1000, ms(vlLat[rounds/2]), ms(vlLat[rounds-1]), vlCPU/rounds*1000, ratio,
			ms(oldLat[rounds/2]), oldCPU/rounds*1000, oldRatio)
		b.ReportMetric(oldRatio, fmt.Sprintf("q%d-p50-vs-rows", qi+1))
		b.ReportMetric(ratio, fmt.Sprintf("q%d-p50-vs-vlogs", qi+1))
		if qi == 0 {
			checkErrorsPerService(b, flAns, vlAns)
		}
		if page {
			// Both answer a page of 100 when the window holds that many.
			var fp struct{ Records []json.RawMessage }
			json.Unmarshal(flAns, &fp)
			if vlRows := len(bytes.Split(bytes.TrimSpace(vlAns), []byte("\n"))); len(fp.Records) != vlRows && len(bytes.TrimSpace(vlAns)) > 0 {
				fmt.Printf("  (%s: flowg-server answered %d records, VictoriaLogs %d)\n", q.name, len(fp.Records), vlRows)
			}
		}
	}
}

// diskBytes is the space the files under dir take on disk.
func diskBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// sameStats reports whether two stats answers hold the same rows.
func sameStats(a, b []byte) bool {
	var x, y struct{ Rows any }
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// checkErrorsPerService compares the two servers' counts of errors per
// service.
func checkErrorsPerService(b *testing.B, flAns, vlAns []byte) {
	var fl struct {
		Rows []struct {
			By     map[string]string
			Values map[string]float64
		}
	}
	json.Unmarshal(flAns, &fl)
	want := map[string]float64{}
	for _, line := range bytes.Split(bytes.TrimSpace(vlAns), []byte("\n")) {
		var row struct{ Service, N string }
		json.Unmarshal(line, &row)
		var n float64
		fmt.Sscan(row.N, &n)
		want[row.Service] = n
	}
	if len(fl.Rows) != len(want) || len(want) == 0 {
		b.Errorf("errors per service: flowg-server has %d services, VictoriaLogs %d", len(fl.Rows), len(want))
	}
	for _, r := range fl.Rows {
		if got := r.Values["count()"]; got != want[r.By["service"]] {
			b.Errorf("errors of %s: flowg-server %v, VictoriaLogs %v", r.By["service"], got, want[r.By["service"]])
		}
	}
}
