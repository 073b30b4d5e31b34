package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(tb testing.TB, pid int) int64 { return procStatus(tb, pid, "VmHWM") }

// rss is a process's resident set now (VmRSS), in bytes.
func rss(tb testing.TB, pid int) int64 { return procStatus(tb, pid, "VmRSS") }

// procStatus is a size line of /proc/<pid>/status, in bytes.
func procStatus(tb testing.TB, pid int, key string) int64 {
	v := rssParts(pid, key)[key]
	if v == 0 {
		tb.Fatalf("no %s in /proc/%d/status", key, pid)
	}
	return v
}

// rssParts reads size lines of /proc/<pid>/status (by default RssAnon:
// heap and stacks, and RssFile: mapped files, Badger's tables and logs
// among them), in bytes, by key.
func rssParts(pid int, keys ...string) map[string]int64 {
	if len(keys) == 0 {
		keys = []string{"RssAnon", "RssFile"}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		for _, k := range keys {
			if v, ok := strings.CutPrefix(line, k+":"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				out[k] = kb << 10
			}
		}
	}
	return out
}

// cpuSeconds is a process's user and system CPU time so far.
func cpuSeconds(tb testing.TB, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// BenchmarkMemory reports the peak RSS of a node at its default memory
// budget while it ingests 2,000,000 records of about 250 bytes in batches
// of 500 (8 clients), and of a second node that takes the same records as
// a replica, beside the records per server CPU-second; and, in the same
// run as the reference, the same at a 4 GiB budget (128 MiB memtables and
// caches: about Badger's sizes before there was a budget). Target: under
// 512 MiB each at the default.
func BenchmarkMemory(b *testing.B) {
	bin := benchBin(b)
	for range b.N {
		var def, big memFigures
		withBin(bin, func() { def = benchMemory(b, "the default budget") })
		withBin(bin, func() { big = benchMemory(b, "a 4 GiB budget", "--memory-limit", "4GiB") })
		b.ReportMetric(float64(def.ingestPeak>>20), "ingest-peak-MiB")
		b.ReportMetric(float64(def.replicaPeak>>20), "replica-peak-MiB")
		b.ReportMetric(def.recPerCPU, "rec/cpu-s")
		b.ReportMetric(float64(def.ingestPeak)/float64(big.ingestPeak), "ingest-peak-vs-4GiB")
		b.ReportMetric(def.recPerCPU/big.recPerCPU, "rec/cpu-s-vs-4GiB")
		fmt.Printf("memory: the default budget against 4 GiB: peak RSS %.2fx ingesting, %.2fx replica; records per CPU-second %.2fx\n",
			float64(def.ingestPeak)/float64(big.ingestPeak), float64(def.replicaPeak)/float64(big.replicaPeak), def.recPerCPU/big.recPerCPU)
	}
}

// memFigures are one BenchmarkMemory run's figures.
type memFigures struct {
	ingestPeak, replicaPeak int64
	recPerCPU               float64
}

func benchMemory(b *testing.B, label string, extra ...string) memFigures {
	nodes := nodesOf(b, 2, b.TempDir(), nil, extra...)
	ingest, replica := nodes[0], nodes[1]
	tok := ingest.login("root", "root")
	const total, batch, clients = 2_000_000, 500, 8
	bodies := ingestBodies(64, batch)
	cpu0 := cpuSeconds(b, ingest.cmd.Process.Pid)
	var peaks sync.Map // "anon"/"file" of each node → peak bytes, sampled
	sampleDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-sampleDone:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for name, p := range map[string]*proc{"ingest": ingest, "replica": replica} {
				for k, v := range rssParts(p.cmd.Process.Pid) {
					k = strings.ToLower(strings.TrimPrefix(k, "Rss"))
					if old, ok := peaks.Load(name + "-" + k); !ok || old.(int64) < v {
						peaks.Store(name+"-"+k, v)
					}
				}
			}
		}
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var wg sync.WaitGroup
	var refused atomic.Int64
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for i := c; i < total/batch; i += clients {
				for {
					req, _ := http.NewRequest("POST", "http://"+ingest.http+"/api/v1/streams/bench/logs/struct", bytes.NewReader(bodies[i%len(bodies)]))
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusTooManyRequests {
						refused.Add(1)
						time.Sleep(50 * time.Millisecond)
						continue
					}
					if resp.StatusCode != 200 {
						b.Errorf("ingest: %d", resp.StatusCode)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	cpu := cpuSeconds(b, ingest.cmd.Process.Pid) - cpu0
	deadline := time.Now().Add(2 * time.Minute)
	for metric(b, replica, "flowg_replication_records_applied_total") < total && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	close(sampleDone)

	ingestPeak, replicaPeak := peakRSS(b, ingest.cmd.Process.Pid), peakRSS(b, replica.cmd.Process.Pid)
	part := func(k string) int64 { v, _ := peaks.Load(k); n, _ := v.(int64); return n >> 20 }
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("memory: %d records in batches of %d at %s: peak RSS %d MiB on the ingesting node (anon %d, file %d), %d MiB on the replica (anon %d, file %d); %.0f rec/s, %.0f rec per ingest-node CPU-second; %d answers 429; load %s",
		total, batch, label, ingestPeak>>20, part("ingest-anon"), part("ingest-file"), replicaPeak>>20, part("replica-anon"), part("replica-file"),
		total/took.Seconds(), total/cpu, refused.Load(), load)
	return memFigures{ingestPeak, replicaPeak, total / cpu}
}
