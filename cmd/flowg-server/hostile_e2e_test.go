package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// plainBin is flowg-server built without the race detector, for the tests
// that bound a process's memory (the race detector multiplies it).
var plainBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "flowg-plain-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "flowg-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

// startPlain is start with the binary built without the race detector.
func startPlain(t *testing.T, dir string, httpAddr, mgmtAddr string, args ...string) *proc {
	t.Helper()
	bin, err := plainBin()
	if err != nil {
		t.Fatal(err)
	}
	var p *proc
	withBin(bin, func() { p = start(t, dir, nil, httpAddr, mgmtAddr, args...) })
	return p
}

// TestE2E_HeldBodiesCostNothingBeforeAuth: 300 connections that each
// announce an 8 MiB replication request without a valid signature and
// hold its body are refused on their headers; the node's memory grows by
// less than 64 MiB (it grew past 3 GB when bodies were read first) and it
// answers /health throughout.
func TestE2E_HeldBodiesCostNothingBeforeAuth(t *testing.T) {
	dir := t.TempDir()
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	p := startPlain(t, dir, httpAddr, mgmtAddr, nodeArgs(dir, 0, httpAddr, mgmtAddr)...)
	before := rss(t, p.cmd.Process.Pid)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	var peak int64
	refused := 0
	for i := range 300 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%200))}}
		c, err := d.Dial("tcp", mgmtAddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /cluster/repl/pull HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nX-Flowg-From: 127.0.0.1:1\r\nX-Flowg-To: n0\r\n"+
			"X-Flowg-Timestamp: %d\r\nX-Flowg-Nonce: %032x\r\nX-Flowg-Content-Sha256: %064x\r\nX-Flowg-Signature: %064x\r\n\r\n",
			8<<20-1, time.Now().UnixMilli(), i, i, i)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(chunk) // the node may close the connection before all of it
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		if n, _ := c.Read(buf); strings.Contains(string(buf[:n]), " 401 ") {
			refused++
		}
		if i%50 == 0 {
			peak = max(peak, rss(t, p.cmd.Process.Pid))
			if code := get(t, "http://"+mgmtAddr+"/health"); code != 200 {
				t.Fatalf("/health answered %d with %d bodies held", code, i)
			}
		}
	}
	peak = max(peak, rss(t, p.cmd.Process.Pid))
	t.Logf("RSS %d MiB before, %d MiB at most while 300 bodies were held; %d refused with 401", before>>20, peak>>20, refused)
	if refused != 300 {
		t.Fatalf("%d of 300 held requests refused with 401", refused)
	}
	if peak-before > 64<<20 {
		t.Fatalf("RSS grew by %d MiB", (peak-before)>>20)
	}
}

func get(t *testing.T, url string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestE2E_IdleConnectionsNextToHealth: thousands of idle connections from
// one client to the public port, and 1,024 to the syslog TCP port, leave
// /health answering and another client served on both.
func TestE2E_IdleConnectionsNextToHealth(t *testing.T) {
	dir := t.TempDir()
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	sys := freeAddr(t)
	args := append(nodeArgs(dir, 0, httpAddr, mgmtAddr), "--syslog-bind", sys, "--syslog-protocol", "tcp")
	p := start(t, dir, nil, httpAddr, mgmtAddr, args...)
	tok := p.login("root", "root")
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	from := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 2 * time.Second}
	for range 3000 {
		if c, err := from.Dial("tcp", httpAddr); err == nil {
			idle = append(idle, c)
		}
	}
	for range 1024 {
		if c, err := from.Dial("tcp", sys); err == nil {
			idle = append(idle, c)
		}
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if code := get(t, "http://"+mgmtAddr+"/health"); code != 200 {
		t.Fatalf("/health: %d", code)
	}
	t.Logf("/health answered in %s next to %d idle connections", time.Since(start).Round(time.Millisecond), len(idle))
	if code, b := p.request(tok, "POST", "/api/v1/streams/app/logs/struct", `{"records":[{"message":"served"}]}`); code != 200 {
		t.Fatalf("another client's ingest: %d %s", code, b)
	}
	other := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	c, err := other.Dial("tcp", sys)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "<13>1 2026-01-02T03:04:05Z h app - - - from another sender\n")
	c.Close()
	eventually(t, 10*time.Second, "the other syslog sender's message is stored", func() bool {
		code, b := p.request(tok, "GET", "/api/v1/streams/syslog/logs", "")
		return code == 200 && strings.Contains(string(b), "from another sender")
	})
	if n := metric(t, p, "flowg_connections_refused_total"); n < 2000 {
		t.Fatalf("%v connections refused, want most of the 3000", n)
	}
}

// TestE2E_DiskFull: with its log directory on a 256 MiB file system that
// fills up, a node answers ingest 507 with the reason, keeps answering
// queries and /ready, says so in /ready's body and its metrics, and takes
// records again once space is freed, with no restart.
func TestE2E_DiskFull(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.MkdirAll(small, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("this test mounts a small file system and needs root: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", small).Run() })
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	args := append(nodeArgs(dir, 0, httpAddr, mgmtAddr), "--log-dir", filepath.Join(small, "logs"))
	p := start(t, dir, nil, httpAddr, mgmtAddr, args...)
	tok := p.login("root", "root")
	filler := filepath.Join(small, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	// Free a little: the node takes records until its reserve, then stops.
	os.Truncate(filler, mustSize(t, filler)-64<<20)
	// The node reads the free space at most every 50 ms: a reading taken
	// while the filler was full must not answer for the first request.
	time.Sleep(100 * time.Millisecond)
	// Random text: blocks would compress a repeated message to nothing.
	random := make([]byte, 750)
	body := func() string {
		var b strings.Builder
		b.WriteString(`{"records":[`)
		for i := range 500 {
			rand.Read(random)
			fmt.Fprintf(&b, `{"message":%q}`, base64.StdEncoding.EncodeToString(random))
			if i < 499 {
				b.WriteByte(',')
			}
		}
		b.WriteString(`]}`)
		return b.String()
	}
	var code int
	var answer []byte
	acked := 0
	for range 2000 {
		if code, answer = p.request(tok, "POST", "/api/v1/streams/app/logs/struct", body()); code != 200 {
			break
		}
		acked += 500
	}
	if code != http.StatusInsufficientStorage || !strings.Contains(string(answer), "free") {
		t.Fatalf("ingest on a full disk: %d %s", code, answer)
	}
	t.Logf("507 after %d records: %s", acked, answer)
	if c, b := p.request(tok, "GET", "/api/v1/streams/app/logs?limit=5", ""); c != 200 || strings.Count(string(b), `"timestamp"`) != 5 {
		t.Fatalf("query on a full disk: %d %.200s", c, b)
	}
	resp, err := http.Get("http://" + mgmtAddr + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	var ready bytes.Buffer
	ready.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(ready.String(), "disk") {
		t.Fatalf("/ready on a full disk: %d %s", resp.StatusCode, ready.String())
	}
	if metric(t, p, "flowg_store_disk_full") != 1 {
		t.Fatal("flowg_store_disk_full is not 1")
	}
	os.Remove(filler)
	eventually(t, 5*time.Second, "ingest resumes once space is freed", func() bool {
		c, _ := p.request(tok, "POST", "/api/v1/streams/app/logs/struct", `{"records":[{"message":"after"}]}`)
		return c == 200
	})
	if !strings.Contains(p.logText(), "disk full") {
		t.Fatal("the log does not say disk full")
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
}

func mustSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestE2E_BigRecordsUnderMemoryLimit: four clients that each send 8 MB
// requests of 8 KB records, again and again, to a node with a 256 MiB
// memory budget and to its replica: both stay under 512 MiB resident (the
// ingesting node reached 3.15 GB before there was a budget), requests past
// the bytes in flight are answered 429, and every acknowledged record is
// on both nodes.
func TestE2E_BigRecordsUnderMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	nodes := nodesOf(t, 2, dir, func(httpAddr, mgmtAddr string, args ...string) *proc {
		return startPlain(t, dir, httpAddr, mgmtAddr, args...)
	}, "--memory-limit", "256MiB")
	tok := nodes[0].login("root", "root")
	var body bytes.Buffer
	body.WriteString(`{"records":[`)
	for i := range 1000 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"level":"info","n":"%d","message":"%s"}`, i, strings.Repeat("b", 8<<10))
	}
	body.WriteString(`]}`)
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked, busy := 0, 0
	for range 4 {
		wg.Go(func() {
			for range 10 {
				code, b := nodes[0].request(tok, "POST", "/api/v1/streams/big/logs/struct", body.String())
				mu.Lock()
				switch code {
				case 200:
					acked += 1000
				case http.StatusTooManyRequests:
					busy++
				default:
					t.Errorf("ingest: %d %.200s", code, b)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	eventually(t, 60*time.Second, "the replica holds every acknowledged record", func() bool {
		return metric(t, nodes[1], "flowg_replication_records_applied_total") >= float64(acked)
	})
	p0, p1 := peakRSS(t, nodes[0].cmd.Process.Pid), peakRSS(t, nodes[1].cmd.Process.Pid)
	t.Logf("%d records of 8 KB acknowledged (%d answers 429); peak RSS %d MiB ingesting, %d MiB replica", acked, busy, p0>>20, p1>>20)
	if p0 > 512<<20 || p1 > 512<<20 {
		t.Fatalf("peak RSS %d MiB and %d MiB with a 256 MiB budget", p0>>20, p1>>20)
	}
}
