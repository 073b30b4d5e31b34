package serfnet

// Cluster benchmarks: 50 nodes in one process, with default timings, on
// this package's HTTP transport and, as the anchor, on memberlist's own
// UDP/TCP transport. Each does a fixed amount of work once and prints its
// figures; `make bench` runs them with -benchtime 1x.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	flowg "github.com/flowg-server/flowg-server"
)

const benchNodes = 50

// counting wraps a transport: it counts the bytes of packets and streams
// sent, and drops traffic to chosen addresses (to cut a partition).
type counting struct {
	memberlist.NodeAwareTransport
	sent *atomic.Int64
	drop *atomic.Pointer[func(string) bool]
}

func (c counting) cut(addr string) bool { f := c.drop.Load(); return f != nil && (*f)(addr) }

func (c counting) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if c.cut(a.Addr) {
		return time.Now(), nil
	}
	c.sent.Add(int64(len(b)))
	return c.NodeAwareTransport.WriteToAddress(b, a)
}

func (c counting) WriteTo(b []byte, addr string) (time.Time, error) {
	return c.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (c counting) DialAddressTimeout(a memberlist.Address, d time.Duration) (net.Conn, error) {
	if c.cut(a.Addr) {
		return nil, fmt.Errorf("cut")
	}
	conn, err := c.NodeAwareTransport.DialAddressTimeout(a, d)
	if err != nil {
		return nil, err
	}
	return countingConn{conn, c.sent}, nil
}

func (c counting) DialTimeout(addr string, d time.Duration) (net.Conn, error) {
	return c.DialAddressTimeout(memberlist.Address{Addr: addr}, d)
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) { c.n.Add(int64(len(b))); return c.Conn.Write(b) }

// wireListener counts the bytes the HTTP server reads: the HTTP transport's
// traffic as it crosses the wire, headers included.
type wireListener struct {
	net.Listener
	n *atomic.Int64
}

func (l wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wireConn{c, l.n}, nil
}

type wireConn struct {
	net.Conn
	n *atomic.Int64
}

func (c wireConn) Read(b []byte) (int, error) {
	k, err := c.Conn.Read(b)
	c.n.Add(int64(k))
	return k, err
}

type bnode struct {
	name string
	addr string
	s    *serf.Serf
	stop func()
	sent atomic.Int64
	wire atomic.Int64
	drop atomic.Pointer[func(string) bool]
	m    *metrics
	join func(addr string)
}

// startBench starts one node with default timings on the "http" or "udp"
// transport.
func startBench(b *testing.B, kind, name string) *bnode {
	n := &bnode{name: name}
	sc := serf.DefaultConfig()
	sc.NodeName = name
	sc.Logger = newStdLogger(slog.New(slog.DiscardHandler))
	// Both transports get the product's timings.
	ml := LANConfig()
	ml.Name = name
	ml.Logger = sc.Logger
	sc.MemberlistConfig = ml
	switch kind {
	case "http":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.NodeID, cfg.Advertise, cfg.Logger = name, ln.Addr().String(), slog.New(slog.DiscardHandler)
		c, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: c.Handler(), ErrorLog: newStdLogger(slog.New(slog.DiscardHandler))}
		ConfigureServer(srv)
		go srv.Serve(wireListener{ln, &n.wire})
		adv := c.transport.advertise
		ml.BindAddr, ml.BindPort, ml.AdvertiseAddr, ml.AdvertisePort = adv.IP.String(), adv.Port, adv.IP.String(), adv.Port
		ml.Transport = counting{c.transport, &n.sent, &n.drop}
		sc.ReconnectInterval = cfg.ReconnectInterval
		n.addr = adv.String()
		n.m = c.m
		n.join = func(addr string) {
			c.Join(context.Background(), []flowg.Peer{{Endpoint: "http://" + addr}})
		}
		defer func() { c.serf = n.s }()
		n.stop = func() { srv.Close(); c.transport.Shutdown() }
	case "udp":
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0, Logger: sc.Logger})
		if err != nil {
			b.Fatal(err)
		}
		ml.BindAddr, ml.BindPort = "127.0.0.1", nt.GetAutoBindPort()
		ml.Transport = counting{nt, &n.sent, &n.drop}
		n.addr = fmt.Sprintf("127.0.0.1:%d", ml.BindPort)
		n.stop = func() { nt.Shutdown() }
		n.join = func(addr string) { n.s.Join([]string{addr}, true) }
	}
	s, err := serf.Create(sc)
	if err != nil {
		b.Fatal(err)
	}
	n.s = s
	return n
}

// kill stops a node without leaving.
func (n *bnode) kill() { n.s.Shutdown(); n.stop() }

// The HTTP kind joins through Cluster.Join, as the product does; the UDP
// anchor through serf's own Join.

// seen reports whether every node in nodes sees name with status st.
func seen(nodes []*bnode, name string, st serf.MemberStatus) bool {
	for _, n := range nodes {
		ok := false
		for _, m := range n.s.Members() {
			if m.Name == name && m.Status == st {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func allAlive(nodes []*bnode, want int) bool {
	for _, n := range nodes {
		if n.s.NumNodes() != want {
			return false
		}
		for _, m := range n.s.Members() {
			if m.Status != serf.StatusAlive {
				return false
			}
		}
	}
	return true
}

func waitUntil(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start), true
}

func startCluster(b *testing.B, kind, prefix string) ([]*bnode, time.Duration, bool) {
	nodes := make([]*bnode, benchNodes)
	for i := range nodes {
		nodes[i] = startBench(b, kind, fmt.Sprintf("%s-%02d", prefix, i))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, n := range nodes[1:] {
		wg.Go(func() { n.join(nodes[0].addr) })
	}
	wg.Wait()
	_, ok := waitUntil(30*time.Second, func() bool { return allAlive(nodes, benchNodes) })
	return nodes, time.Since(start), ok
}

func killAll(nodes []*bnode) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(n.kill)
	}
	wg.Wait()
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// BenchmarkCluster50 reports, for each transport: 50 nodes started together
// agreeing (20 runs), a new node seen by all 50 (p50/p99 of 20 runs), a
// crashed node marked failed by all, a 25/25 partition merging after it
// heals, and gossip bytes per node per second while idle.
func BenchmarkCluster50(b *testing.B) {
	for b.Loop() {
		for _, kind := range []string{"http", "udp"} {
			benchCluster(b, kind)
		}
	}
}

func benchCluster(b *testing.B, kind string) {
	var agree []time.Duration
	okRuns := 0
	for run := range 20 {
		nodes, d, ok := startCluster(b, kind, fmt.Sprintf("%s-agree%02d", kind, run))
		agree = append(agree, d)
		if ok && d <= 3*time.Second {
			okRuns++
		}
		killAll(nodes)
	}
	fmt.Printf("%s: 50 nodes started together agree: p50 %s, max %s, within 3 s in %d of 20 runs\n",
		kind, pct(agree, 50).Round(time.Millisecond), pct(agree, 100).Round(time.Millisecond), okRuns)

	nodes, _, ok := startCluster(b, kind, kind)
	if !ok {
		fmt.Printf("%s: 50 nodes did not agree within 30 s; measuring anyway\n", kind)
	}
	defer killAll(nodes)
	var joins []time.Duration
	for run := range 20 {
		n := startBench(b, kind, fmt.Sprintf("%s-new%02d", kind, run))
		start := time.Now()
		n.join(nodes[run%benchNodes].addr)
		waitUntil(30*time.Second, func() bool { return seen(nodes, n.s.LocalMember().Name, serf.StatusAlive) })
		joins = append(joins, time.Since(start))
		n.s.Leave()
		n.kill()
		waitUntil(30*time.Second, func() bool { return seen(nodes, n.s.LocalMember().Name, serf.StatusLeft) })
	}
	fmt.Printf("%s: new node seen by all 50: p50 %s, p99 %s\n", kind, pct(joins, 50).Round(time.Millisecond), pct(joins, 99).Round(time.Millisecond))

	var before int64
	for _, n := range nodes {
		before += n.sent.Load() + n.wire.Load()
	}
	var wireBefore int64
	for _, n := range nodes {
		wireBefore += n.wire.Load()
	}
	sentBefore := before - wireBefore
	idle := 10 * time.Second
	time.Sleep(idle)
	var sent, wire int64
	for _, n := range nodes {
		sent += n.sent.Load()
		wire += n.wire.Load()
	}
	perNode := float64(sent-sentBefore) / benchNodes / idle.Seconds()
	line := fmt.Sprintf("%s: idle gossip %.0f payload bytes/node/s", kind, perNode)
	if kind == "http" {
		line += fmt.Sprintf(", %.0f bytes/node/s on the wire with HTTP", float64(wire-wireBefore)/benchNodes/idle.Seconds())
	}
	fmt.Println(line)

	victim := nodes[benchNodes-1]
	rest := nodes[:benchNodes-1]
	victim.kill()
	d, ok := waitUntil(60*time.Second, func() bool { return seen(rest, victim.name, serf.StatusFailed) })
	fmt.Printf("%s: crashed node marked failed by all 49: %s (ok=%v)\n", kind, d.Round(time.Millisecond), ok)

	d, ok = measurePartition(rest)
	fmt.Printf("%s: 49 nodes merged after a 25/24 partition healed: %s (ok=%v)\n", kind, d.Round(time.Millisecond), ok)
}

// measurePartition cuts nodes in two halves, waits until each side sees the
// other failed, heals the links and returns how long the merge took.
func measurePartition(rest []*bnode) (time.Duration, bool) {
	side := map[string]int{}
	for i, n := range rest {
		side[n.addr] = i % 2
	}
	for _, n := range rest {
		mine := side[n.addr]
		f := func(addr string) bool { return side[addr] != mine }
		n.drop.Store(&f)
	}
	_, ok := waitUntil(120*time.Second, func() bool {
		for _, n := range rest {
			for _, m := range n.s.Members() {
				peer := net.JoinHostPort(m.Addr.String(), fmt.Sprint(m.Port))
				if s, ok := side[peer]; ok && s != side[n.addr] && m.Status != serf.StatusFailed {
					return false
				}
			}
		}
		return true
	})
	if !ok {
		fmt.Println("the partition was not seen by every node within 120 s")
	}
	for _, n := range rest {
		n.drop.Store(nil)
	}
	return waitUntil(120*time.Second, func() bool {
		for _, n := range rest {
			alive := 0
			for _, m := range n.s.Members() {
				if m.Status == serf.StatusAlive {
					alive++
				}
			}
			if alive != len(rest) {
				return false
			}
		}
		return true
	})
}

// BenchmarkPartition50 measures only the partition merge of 50 nodes on the
// HTTP transport.
func BenchmarkPartition50(b *testing.B) {
	for b.Loop() {
		nodes, _, _ := startCluster(b, "http", "p")
		d, ok := measurePartition(nodes)
		fmt.Printf("http: 50 nodes merged after a 25/25 partition healed: %s (ok=%v)\n", d.Round(time.Millisecond), ok)
		killAll(nodes)
	}
}

// BenchmarkIdle50 measures only the idle gossip bytes of 50 nodes on the
// HTTP transport, with and without a cookie.
func BenchmarkIdle50(b *testing.B) {
	for b.Loop() {
		nodes, _, _ := startCluster(b, "http", "i")
		time.Sleep(5 * time.Second)
		var sent0, wire0 int64
		for _, n := range nodes {
			sent0 += n.sent.Load()
			wire0 += n.wire.Load()
		}
		time.Sleep(10 * time.Second)
		var sent, wire int64
		for _, n := range nodes {
			sent += n.sent.Load()
			wire += n.wire.Load()
		}
		fmt.Printf("http: idle gossip %.0f payload bytes/node/s, %.0f on the wire\n",
			float64(sent-sent0)/benchNodes/10, float64(wire-wire0)/benchNodes/10)
		killAll(nodes)
	}
}
