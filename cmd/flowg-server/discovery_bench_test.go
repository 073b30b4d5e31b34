package main

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/flowg-server/flowg-server/internal/consultest"
)

// discoveryRuns is how many nodes each discovery benchmark adds, one by one.
const discoveryRuns = 10

// BenchmarkConsulJoin measures, over real processes and a real Consul
// agent, the time from a new node turning passing in Consul (seen by a
// blocking query of the benchmark's own) to every node of a 3-node cluster
// listing it alive. Target: 2 s, which only blocking queries reach (the
// check interval alone is 5 s).
func BenchmarkConsulJoin(b *testing.B) {
	for range b.N {
		agent := consultest.Start(b)
		client := agent.Client(b)
		dir := b.TempDir()
		args := func(i int, httpAddr, mgmtAddr string) []string {
			return append(nodeArgs(dir, i, httpAddr, mgmtAddr), "--cluster-consul-url", agent.URL())
		}
		var nodes []*proc
		want := map[string]string{}
		for i := range 3 {
			httpAddr, mgmtAddr := freeAddr(b), freeAddr(b)
			nodes = append(nodes, start(b, dir, nil, httpAddr, mgmtAddr, args(i, httpAddr, mgmtAddr)...))
			want[fmt.Sprintf("n%d", i)] = "alive"
		}
		waitMembers(b, nodes, want, 20*time.Second)
		var took []time.Duration
		for r := range discoveryRuns {
			i := 3 + r
			id := fmt.Sprintf("n%d", i)
			httpAddr, mgmtAddr := freeAddr(b), freeAddr(b)
			// Watch from before the node starts, so the moment it turns
			// passing is seen by a blocking query, not by a poll.
			healthy := make(chan time.Time, 1)
			go func() {
				var index uint64
				for {
					entries, meta, err := client.Health().Service("flowg", "", true, &api.QueryOptions{WaitIndex: index, WaitTime: time.Minute})
					if err != nil {
						return
					}
					index = meta.LastIndex
					if slices.ContainsFunc(entries, func(e *api.ServiceEntry) bool { return e.Service.ID == id }) {
						healthy <- time.Now()
						return
					}
				}
			}()
			p := start(b, dir, nil, httpAddr, mgmtAddr, args(i, httpAddr, mgmtAddr)...)
			at := <-healthy
			want[id] = "alive"
			waitStatuses(b, append(nodes, p), want, 20*time.Second, false)
			took = append(took, time.Since(at))
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.wait()
			delete(want, id)
			waitStatuses(b, nodes, withLeft(want, id), 20*time.Second, false)
		}
		reportDurations(b, took)
	}
}

// BenchmarkDNSJoin measures the time from an SRV record appearing (dnsmasq,
// records with a 5 s TTL, --cluster-dns-interval 30s) to every node of a
// 3-node cluster listing the new node alive. Target: refresh (5 s) + 2 s.
func BenchmarkDNSJoin(b *testing.B) {
	for range b.N {
		dir := b.TempDir()
		server := freeAddr(b)
		var nodes []*proc
		var mgmts []string
		want := map[string]string{}
		dnsArgs := []string{"--cluster-dns-name", "_mgmt._tcp.flowg.test", "--cluster-dns-server", server, "--cluster-dns-interval", "30s"}
		var mgmtAddrs []string
		var httpAddrs []string
		for range 3 + discoveryRuns {
			httpAddrs, mgmtAddrs = append(httpAddrs, freeAddr(b)), append(mgmtAddrs, freeAddr(b))
		}
		stop := startDnsmasq(b, server, mgmtAddrs[:3], "local-ttl=5")
		for i := range 3 {
			nodes = append(nodes, start(b, dir, nil, httpAddrs[i], mgmtAddrs[i], append(nodeArgs(dir, i, httpAddrs[i], mgmtAddrs[i]), dnsArgs...)...))
			mgmts = append(mgmts, mgmtAddrs[i])
			want[fmt.Sprintf("n%d", i)] = "alive"
		}
		waitMembers(b, nodes, want, 30*time.Second)
		var took []time.Duration
		for r := range discoveryRuns {
			i := 3 + r
			id := fmt.Sprintf("n%d", i)
			// The new node discovers nothing itself: the others must find it.
			p := start(b, dir, nil, httpAddrs[i], mgmtAddrs[i], nodeArgs(dir, i, httpAddrs[i], mgmtAddrs[i])...)
			stop()
			stop = startDnsmasq(b, server, append(slices.Clone(mgmts), mgmtAddrs[i]), "local-ttl=5")
			at := time.Now()
			want[id] = "alive"
			waitStatuses(b, append(nodes, p), want, 30*time.Second, false)
			took = append(took, time.Since(at))
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.wait()
			delete(want, id)
			waitStatuses(b, nodes, withLeft(want, id), 20*time.Second, false)
			stop()
			stop = startDnsmasq(b, server, mgmts, "local-ttl=5")
		}
		reportDurations(b, took)
	}
}

// withLeft is want plus id as left.
func withLeft(want map[string]string, id string) map[string]string {
	out := map[string]string{id: "left"}
	for k, v := range want {
		out[k] = v
	}
	return out
}

func reportDurations(b *testing.B, took []time.Duration) {
	slices.Sort(took)
	p := func(q float64) time.Duration { return took[min(len(took)-1, int(q*float64(len(took))))] }
	b.Logf("%d joins: p50 %s, max %s, all %v", len(took), p(0.5), took[len(took)-1], took)
	b.ReportMetric(p(0.5).Seconds(), "p50-s")
	b.ReportMetric(took[len(took)-1].Seconds(), "max-s")
}
