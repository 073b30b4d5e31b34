package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/internal/consultest"
)

// BenchmarkConnect measures the cost of the Consul Connect port against the
// plain one on the same node in the same run: one-record ingest requests
// over keep-alive connections (4 clients), per server CPU-second, in
// alternating rounds, and the latency of a new Connect connection
// (TLS handshake with the mesh's leaf plus the intention check).
func BenchmarkConnect(b *testing.B) {
	bin := benchBin(b)
	for range b.N {
		withBin(bin, func() {
			agent := consultest.Start(b)
			client := agent.Client(b)
			dir := b.TempDir()
			httpAddr, mgmtAddr, apiAddr := freeAddr(b), freeAddr(b), freeAddr(b)
			n := start(b, dir, nil, httpAddr, mgmtAddr, append(nodeArgs(dir, 0, httpAddr, mgmtAddr),
				"--cluster-consul-url", agent.URL(), "--consul-connect", "--ingest-copy-timeout", "0",
				"--consul-connect-api-bind", apiAddr, "--consul-connect-syslog-bind", freeAddr(b))...)
			tok := n.login("root", "root")
			n.request(tok, "PUT", "/api/v1/roles/shipper", `{"scopes":["send_logs"]}`)
			n.request(tok, "PUT", "/api/v1/mesh/services/bench-client", `{"roles":["shipper"]}`)
			leaf, _, err := client.Agent().ConnectCALeaf("bench-client", nil)
			if err != nil {
				b.Fatal(err)
			}
			cert, err := tls.X509KeyPair([]byte(leaf.CertPEM), []byte(leaf.PrivateKeyPEM))
			if err != nil {
				b.Fatal(err)
			}
			meshTLS := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}
			plainC := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			meshC := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, TLSClientConfig: meshTLS}}

			const perRound, clients = 4000, 4
			round := func(c *http.Client, url, token string) (rps, perCPU float64) {
				cpu0 := cpuSeconds(b, n.cmd.Process.Pid)
				start := time.Now()
				var wg sync.WaitGroup
				for k := range clients {
					wg.Go(func() {
						for j := k; j < perRound; j += clients {
							req, _ := http.NewRequest("POST", url, strings.NewReader(fmt.Sprintf(`{"records":[{"n":"%d"}]}`, j)))
							if token != "" {
								req.Header.Set("Authorization", "Bearer "+token)
							}
							resp, err := c.Do(req)
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 {
								b.Errorf("%s: %s", url, resp.Status)
								return
							}
						}
					})
				}
				wg.Wait()
				took, cpu := time.Since(start).Seconds(), cpuSeconds(b, n.cmd.Process.Pid)-cpu0
				return perRound / took, perRound / cpu
			}
			var plainCPU, meshCPU, plainRPS, meshRPS float64
			for r := range 3 {
				p, pc := round(plainC, "http://"+httpAddr+"/api/v1/streams/bench/logs/struct", tok)
				m, mc := round(meshC, "https://"+apiAddr+"/api/v1/streams/bench/logs/struct", "")
				if r > 0 { // the first round warms up
					plainRPS, plainCPU, meshRPS, meshCPU = plainRPS+p, plainCPU+pc, meshRPS+m, meshCPU+mc
				}
			}
			b.ReportMetric(plainCPU/2, "plain_req/cpu_s")
			b.ReportMetric(meshCPU/2, "connect_req/cpu_s")
			b.ReportMetric(meshCPU/plainCPU, "connect/plain_per_cpu")
			b.ReportMetric(meshRPS/plainRPS, "connect/plain_rate")

			var lat []time.Duration
			for range 200 {
				t0 := time.Now()
				conn, err := tls.Dial("tcp", apiAddr, meshTLS)
				if err != nil {
					b.Fatal(err)
				}
				// TLS 1.3: the server's verdict on the client certificate
				// arrives with its first answer.
				fmt.Fprintf(conn, "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				buf := make([]byte, 1)
				if _, err := conn.Read(buf); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				conn.Close()
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "newconn_p50_ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "newconn_p99_ms")
		})
	}
}
