package serfnet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus/testutil"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/serftest"
	"github.com/flowg-server/flowg-server/internal/testwait"
)

// tune is the timings the tests share.
var tune = serftest.Tune

// testNode is a Cluster served by a real HTTP server on a loopback port.
type testNode struct {
	t       *testing.T
	c       *Cluster
	srv     *http.Server
	addr    string
	dir     string
	cookie  string
	stopped bool
}

func startNode(t *testing.T, name, addr, dir, cookie string) *testNode {
	t.Helper()
	return startTuned(t, name, addr, dir, cookie, tune)
}

// startTuned is startNode with other timings.
func startTuned(t *testing.T, name, addr, dir, cookie string, tune func(*serf.Config)) *testNode {
	t.Helper()
	return startWith(t, name, addr, dir, cookie, func(c *Config) { c.Tune = tune })
}

// startWith is startNode with edit applied to the config last.
func startWith(t *testing.T, name, addr, dir, cookie string, edit func(*Config)) *testNode {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // a restarted node takes its old port back
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Advertise, cfg.Cookie, cfg.StateDir = name, ln.Addr().String(), cookie, dir
	cfg.Tags = map[string]string{"endpoint": "http://" + ln.Addr().String()}
	cfg.Tune = tune
	cfg.Logger = slog.New(slog.DiscardHandler)
	edit(&cfg)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+GossipPath, c.Handler())
	srv := &http.Server{Handler: mux}
	ConfigureServer(srv)
	go srv.Serve(ln)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	n := &testNode{t: t, c: c, srv: srv, addr: ln.Addr().String(), dir: dir, cookie: cookie}
	t.Cleanup(n.kill)
	return n
}

// kill stops the node without leaving: its listener closes and it stops
// answering, as after kill -9.
func (n *testNode) kill() {
	if n.stopped {
		return
	}
	n.stopped = true
	n.srv.Close()
	n.c.Close()
}

func (n *testNode) join(to *testNode) (int, error) {
	return n.c.Join(context.Background(), []flowg.Peer{{NodeID: to.c.NodeID(), Endpoint: "http://" + to.addr}})
}

// statuses is node ID → status, as n sees the cluster.
func (n *testNode) statuses() map[string]string {
	out := map[string]string{}
	for _, node := range n.c.Nodes() {
		out[node.ID] = string(node.Status)
	}
	return out
}

var eventually = testwait.Eventually

// sees reports whether every node in from sees want as the statuses.
func sees(from []*testNode, want map[string]string) func() bool {
	return func() bool {
		for _, n := range from {
			got := n.statuses()
			for id, st := range want {
				if got[id] != st {
					return false
				}
			}
		}
		return true
	}
}

const cookie = "0123456789abcdef0123456789abcdef"

func TestCluster_ChainFormationLeaveAndKill(t *testing.T) {
	for _, ck := range []string{"", cookie} {
		t.Run(fmt.Sprintf("cookie=%v", ck != ""), func(t *testing.T) {
			n0 := startNode(t, "n0", "", t.TempDir(), ck)
			n1 := startNode(t, "n1", "", t.TempDir(), ck)
			n2 := startNode(t, "n2", "", t.TempDir(), ck)
			if k, err := n1.join(n0); k != 1 || err != nil {
				t.Fatalf("n1 joins n0: %d, %v", k, err)
			}
			if k, err := n2.join(n1); k != 1 || err != nil {
				t.Fatalf("n2 joins n1: %d, %v", k, err)
			}
			all := []*testNode{n0, n1, n2}
			eventually(t, 5*time.Second, "all three see each other", sees(all, map[string]string{"n0": "alive", "n1": "alive", "n2": "alive"}))
			for _, node := range n0.c.Nodes() {
				if node.ID == "n2" && node.Endpoint != "http://"+n2.addr {
					t.Fatalf("n2's endpoint tag = %q", node.Endpoint)
				}
			}

			if err := n2.c.Leave(); err != nil {
				t.Fatal(err)
			}
			n2.kill()
			eventually(t, 3*time.Second, "n2 seen as left", sees([]*testNode{n0, n1}, map[string]string{"n2": "left"}))

			n1.kill()
			eventually(t, 10*time.Second, "n1 seen as failed", sees([]*testNode{n0}, map[string]string{"n1": "failed"}))
		})
	}
}

func TestCluster_RestartFromSnapshotWithoutJoin(t *testing.T) {
	n0 := startNode(t, "n0", "", t.TempDir(), cookie)
	dir := t.TempDir()
	n1 := startNode(t, "n1", "", dir, cookie)
	n1.join(n0)
	eventually(t, 5*time.Second, "formed", sees([]*testNode{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}))
	n1.kill()
	eventually(t, 10*time.Second, "n1 failed", sees([]*testNode{n0}, map[string]string{"n1": "failed"}))
	n1 = startNode(t, "n1", n1.addr, dir, cookie) // same state dir, no join
	eventually(t, 10*time.Second, "n1 back from its snapshot", sees([]*testNode{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}))
}

// TestCluster_BackAtAnotherAddress: a node that comes back under its name
// at another address (a rescheduled pod: same node ID, new IP, empty disk)
// is taken in, whether its peers had seen the old one fail or not (Serf's
// name conflict resolution would shut the new one down in the second
// case).
func TestCluster_BackAtAnotherAddress(t *testing.T) {
	for _, seenFailed := range []bool{true, false} {
		t.Run(fmt.Sprintf("seen-failed=%v", seenFailed), func(t *testing.T) {
			// The product's failure detection (seconds, longer than the
			// second exchange a join makes after 1 s) and memberlist's own
			// push/pull interval: only the new node's own state exchanges
			// can bring its address in fast.
			product := func(c *serf.Config) {
				tune(c)
				lan := LANConfig()
				ml := c.MemberlistConfig
				ml.ProbeInterval, ml.ProbeTimeout, ml.SuspicionMult = lan.ProbeInterval, lan.ProbeTimeout, lan.SuspicionMult
				ml.PushPullInterval = lan.PushPullInterval
			}
			start := func(name string) *testNode { return startTuned(t, name, "", t.TempDir(), cookie, product) }
			n0, n1, n2 := start("n0"), start("n1"), start("n2")
			n1.join(n0)
			n2.join(n0)
			eventually(t, 5*time.Second, "formed", sees([]*testNode{n0, n1, n2}, map[string]string{"n0": "alive", "n1": "alive", "n2": "alive"}))
			n1.kill()
			if seenFailed {
				eventually(t, 20*time.Second, "n1 failed", sees([]*testNode{n0, n2}, map[string]string{"n1": "failed"}))
			}
			began := time.Now()
			n1 = start("n1")
			if _, err := n1.join(n0); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "n0 and n2 see n1 alive at its new address", func() bool {
				for _, o := range []*testNode{n0, n2} {
					if !slices.ContainsFunc(o.c.Nodes(), func(m flowg.Node) bool {
						return m.ID == "n1" && m.Status == "alive" && m.Endpoint == "http://"+n1.addr
					}) {
						return false
					}
				}
				return true
			})
			t.Logf("n1 at its new address seen alive by all %s after its start", time.Since(began).Round(time.Millisecond))
			eventually(t, 5*time.Second, "n1 sees the others", sees([]*testNode{n1}, map[string]string{"n0": "alive", "n2": "alive"}))
		})
	}
}

func TestCluster_PartitionHeals(t *testing.T) {
	var nodes []*testNode
	for i := range 4 {
		nodes = append(nodes, startNode(t, fmt.Sprintf("n%d", i), "", t.TempDir(), cookie))
	}
	for _, n := range nodes[1:] {
		n.join(nodes[0])
	}
	alive := map[string]string{"n0": "alive", "n1": "alive", "n2": "alive", "n3": "alive"}
	eventually(t, 5*time.Second, "formed", sees(nodes, alive))
	side := map[string]int{nodes[0].addr: 0, nodes[1].addr: 0, nodes[2].addr: 1, nodes[3].addr: 1}
	for _, n := range nodes {
		mine := side[n.addr]
		n.c.Transport().SetDrop(func(addr string) bool { return side[addr] != mine })
	}
	eventually(t, 15*time.Second, "each side sees the other failed",
		func() bool {
			return sees(nodes[:2], map[string]string{"n2": "failed", "n3": "failed"})() &&
				sees(nodes[2:], map[string]string{"n0": "failed", "n1": "failed"})()
		})
	healed := time.Now()
	for _, n := range nodes {
		n.c.Transport().SetDrop(nil)
	}
	eventually(t, 15*time.Second, "the partition merges by itself", sees(nodes, alive))
	t.Logf("merged %s after the links came back", time.Since(healed).Round(10*time.Millisecond))
}

func TestCluster_WrongOrNoCookieCannotJoin(t *testing.T) {
	n0 := startNode(t, "n0", "", t.TempDir(), cookie)
	n1 := startNode(t, "n1", "", t.TempDir(), cookie)
	n1.join(n0)
	eventually(t, 5*time.Second, "formed", sees([]*testNode{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}))
	for _, ck := range []string{"another-cookie-of-enough-length", ""} {
		intruder := startNode(t, "intruder", "", t.TempDir(), ck)
		if k, err := intruder.join(n0); k != 0 || err == nil {
			t.Fatalf("cookie %q joined: %d, %v", ck, k, err)
		}
		time.Sleep(500 * time.Millisecond)
		for _, n := range []*testNode{n0, n1} {
			if st := n.statuses(); len(st) != 2 {
				t.Fatalf("cookie %q changed the members to %v", ck, st)
			}
		}
		if got := len(intruder.c.Nodes()); got != 1 {
			t.Fatalf("the intruder learned %d members", got)
		}
		intruder.kill()
	}
	if v := testutil.ToFloat64(n0.c.m.rejected.WithLabelValues(rejectSignature)) + testutil.ToFloat64(n0.c.m.rejected.WithLabelValues(rejectUnsigned)); v == 0 {
		t.Fatal("rejected requests were not counted")
	}
}

// TestTransport_RejectsReplayTamperOversize sends signed requests by hand.
func TestTransport_RejectsReplayTamperOversize(t *testing.T) {
	n0 := startNode(t, "n0", "", t.TempDir(), cookie)
	key := deriveKeys(cookie, "flowg").signing
	url := "http://" + n0.addr + GossipPath
	send := func(req *http.Request) int {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	body := []byte("not a real memberlist packet")
	now := time.Now()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	sign(req, key, "127.0.0.1:1", "n0", body, now)
	if code := send(req); code != http.StatusAccepted {
		t.Fatalf("signed packet: %d", code)
	}
	replay, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	replay.Header = req.Header.Clone()
	if code := send(replay); code != http.StatusUnauthorized {
		t.Fatalf("replayed packet: %d", code)
	}
	tampered, _ := http.NewRequest("POST", url, strings.NewReader("tampered body of the same size"))
	sign(tampered, key, "127.0.0.1:1", "n0", body, now)
	if code := send(tampered); code != http.StatusUnauthorized {
		t.Fatalf("tampered packet: %d", code)
	}
	spoofed, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	sign(spoofed, key, "127.0.0.1:1", "n0", body, now)
	spoofed.Header.Set(hdrFrom, "127.0.0.1:2")
	if code := send(spoofed); code != http.StatusUnauthorized {
		t.Fatalf("spoofed sender: %d", code)
	}
	stale, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	sign(stale, key, "127.0.0.1:1", "n0", body, now.Add(-time.Hour))
	if code := send(stale); code != http.StatusUnauthorized {
		t.Fatalf("stale packet: %d", code)
	}
	unsigned, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if code := send(unsigned); code != http.StatusUnauthorized {
		t.Fatalf("unsigned packet: %d", code)
	}
	big := make([]byte, MaxPacket+1)
	oversize, _ := http.NewRequest("POST", url, bytes.NewReader(big))
	sign(oversize, key, "127.0.0.1:1", "n0", big, now)
	if code := send(oversize); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize packet: %d", code)
	}
	if _, err := n0.c.Transport().WriteTo(big, n0.addr); err == nil {
		t.Fatal("an oversize packet was queued")
	}
}

// TestTransport_StreamKeepsBufferedBytes checks both ends of a stream: bytes
// a client sends in the same write as its upgrade request, and bytes the
// server sends right behind its 101 answer, both arrive.
func TestTransport_StreamKeepsBufferedBytes(t *testing.T) {
	keys := deriveKeys(cookie, "flowg")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	adv := ln.Addr().(*net.TCPAddr)
	log := slog.New(slog.DiscardHandler)
	server := newTransport(adv, "http", nil, keys.signing, newVerifier([][]byte{keys.signing}, time.Minute, "server"), log, newMetrics(nil), nil)
	go (&http.Server{Handler: server}).Serve(ln)
	defer ln.Close()

	// Server side: the request and "ping" in one write.
	raw, err := net.Dial("tcp", adv.String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	req, _ := http.NewRequest("POST", "http://"+adv.String()+GossipPath, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", upgradeProto)
	sign(req, keys.signing, "127.0.0.1:1", "server", nil, time.Now())
	var buf bytes.Buffer
	req.Write(&buf)
	buf.WriteString("ping")
	raw.Write(buf.Bytes())
	select {
	case conn := <-server.StreamCh():
		got := make([]byte, 4)
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping" {
			t.Fatalf("server read %q, %v", got, err)
		}
		conn.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("no stream reached the server")
	}

	// Client side: "pong" right behind the 101.
	client := newTransport(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, "http", nil, keys.signing, nil, log, newMetrics(nil), nil)
	go func() {
		conn := <-server.StreamCh()
		conn.Write([]byte("pong"))
		conn.Close()
	}()
	conn, err := client.DialAddressTimeout(memberlist.Address{Addr: adv.String(), Name: "server"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, _ := io.ReadAll(conn)
	if string(got) != "pong" {
		t.Fatalf("client read %q", got)
	}
}

// TestCluster_IsSelf recognises this node by ID, by its endpoint and by an
// endpoint with its IP and port (what a DNS answer gives), and no other.
func TestCluster_IsSelf(t *testing.T) {
	n := startNode(t, "n0", "", t.TempDir(), "")
	_, port, _ := net.SplitHostPort(n.addr)
	for _, c := range []struct {
		p    flowg.Peer
		want bool
	}{
		{flowg.Peer{NodeID: "n0"}, true},
		{flowg.Peer{NodeID: "n1", Endpoint: "http://" + n.addr}, false}, // an ID says who it is
		{flowg.Peer{Endpoint: "http://" + n.addr}, true},
		{flowg.Peer{Endpoint: "http://127.0.0.1:" + port}, true},
		{flowg.Peer{Endpoint: "http://127.0.0.1:1"}, false},
		{flowg.Peer{Endpoint: "http://10.255.0.1:" + port}, false},
		{flowg.Peer{Endpoint: "not a url"}, false},
	} {
		if got := n.c.IsSelf(c.p); got != c.want {
			t.Errorf("IsSelf(%+v) = %v, want %v", c.p, got, c.want)
		}
	}
}

// TestAuthenticate: with a cookie, only signed requests pass (Request signs
// them); without one, only requests from a member's address.
func TestAuthenticate(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	serve := func(n *testNode) string {
		ln, err := net.Listen("tcp", n.addr[:strings.LastIndex(n.addr, ":")]+":0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: n.c.Authenticate(ok, 16)}
		ConfigureServer(srv)
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String()
	}
	from := func(local string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	post := func(c *http.Client, url, body string) int {
		resp, err := c.Post(url+"/x", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	signed := startNode(t, "s0", "127.0.0.2:0", t.TempDir(), cookie)
	url := serve(signed)
	if code := post(from("127.0.0.2"), url, "hello"); code != http.StatusUnauthorized {
		t.Errorf("unsigned request with a cookie: %d, want 401", code)
	}
	self := flowg.Peer{NodeID: "s0", Endpoint: url}
	resp, err := signed.c.Request(context.Background(), self, "POST", "/x", nil, []byte("hello"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("signed request: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = signed.c.Request(context.Background(), self, "POST", "/x", nil, []byte("more than sixteen bytes"))
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize signed body: %v %v, want 413", resp.Status, err)
	}
	resp.Body.Close()

	open := startNode(t, "o0", "127.0.0.4:0", t.TempDir(), "")
	url = serve(open)
	if code := post(from("127.0.0.4"), url, "hi"); code != 200 {
		t.Errorf("from a member's address without a cookie: %d, want 200", code)
	}
	if code := post(from("127.0.0.5"), url, "hi"); code != http.StatusForbidden {
		t.Errorf("from a stranger without a cookie: %d, want 403", code)
	}
}
