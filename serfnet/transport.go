package serfnet

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/hashicorp/memberlist"
)

// GossipPath is where the management mux mounts the transport.
const GossipPath = "/cluster/gossip"

// upgradeProto is the protocol name of a stream's HTTP Upgrade.
const upgradeProto = "flowg-gossip"

// Limits of the transport.
const (
	// MaxPacket bounds a packet body.
	MaxPacket = 64 << 10
	// peerQueue is the packets queued for one peer before more are dropped.
	peerQueue = 256
)

// Transport is a memberlist.NodeAwareTransport carried by HTTP: a packet is
// one POST, a stream one Upgrade. Its contract follows memberlist's:
// WriteToAddress queues the packet and returns at once (a bounded queue per
// peer; what overflows is dropped and counted), packets are stamped when
// they arrive, and stream connections honour deadlines.
type Transport struct {
	advertise *net.TCPAddr
	scheme    string
	tlsConfig *tls.Config
	signing   []byte // nil: requests are not signed
	verify    *verifier
	log       *slog.Logger
	m         *metrics
	client    *http.Client
	now       func() time.Time
	peers     *peerHealth

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	mu       sync.Mutex
	queues   map[string]*peer
	shutdown atomic.Bool
	done     chan struct{}

	lastRejectLog atomic.Int64 // unix ns of the last rejection logged

	// drop, when set, says whether traffic to an address is to be dropped;
	// tests use it to cut links.
	drop atomic.Pointer[func(addr string) bool]
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

type peer struct {
	q    chan []byte
	name atomic.Pointer[string] // the peer's node ID, when memberlist knows it
}

func newTransport(advertise *net.TCPAddr, scheme string, tlsConfig *tls.Config, signing []byte, v *verifier, log *slog.Logger, m *metrics, now func() time.Time) *Transport {
	if now == nil {
		now = time.Now
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	var protocols *http.Protocols
	if scheme == "http" {
		// Packets go over HTTP/2 without TLS (prior knowledge): one
		// multiplexed connection per peer, and HPACK shrinks the headers
		// that repeat on every packet. Streams still upgrade HTTP/1.1.
		protocols = new(http.Protocols)
		protocols.SetUnencryptedHTTP2(true)
	}
	return &Transport{
		advertise: advertise, scheme: scheme, tlsConfig: tlsConfig, signing: signing, verify: v, log: log, m: m,
		client: &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				DialContext: dialer.DialContext, TLSClientConfig: tlsConfig,
				MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: 5 * time.Second,
				// Gossip packets are small: no header that is not needed.
				DisableCompression: true,
				Protocols:          protocols,
			},
		},
		packetCh: make(chan *memberlist.Packet, 1024),
		streamCh: make(chan net.Conn, 64),
		queues:   map[string]*peer{},
		done:     make(chan struct{}),
		now:      now,
		peers:    newPeerHealth(log, m, now),
	}
}

// SetDrop makes the transport drop every packet and stream to an address
// for which fn returns true; nil restores the links.
func (t *Transport) SetDrop(fn func(addr string) bool) {
	if fn == nil {
		t.drop.Store(nil)
		return
	}
	t.drop.Store(&fn)
}

func (t *Transport) dropped(addr string) bool {
	fn := t.drop.Load()
	return fn != nil && (*fn)(addr)
}

// FinalAdvertiseAddr returns the address this node gossips from: the one
// configured, never an unspecified address.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.advertise.IP, t.advertise.Port, nil
}

// WriteTo queues a packet for addr.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress queues a packet for addr and returns at once.
func (t *Transport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	now := time.Now()
	if t.shutdown.Load() {
		return now, errors.New("transport is shut down")
	}
	if len(b) > MaxPacket {
		t.m.dropped.WithLabelValues("oversize").Inc()
		return now, fmt.Errorf("packet of %d bytes is over the limit of %d", len(b), MaxPacket)
	}
	if t.dropped(addr.Addr) {
		return now, nil
	}
	buf := append([]byte(nil), b...)
	t.mu.Lock()
	p := t.queues[addr.Addr]
	if p == nil {
		p = &peer{q: make(chan []byte, peerQueue)}
		t.queues[addr.Addr] = p
		go t.sendLoop(addr.Addr, p)
	}
	if n := p.name.Load(); addr.Name != "" && (n == nil || *n != addr.Name) {
		name := addr.Name // stored once per name, not per packet
		p.name.Store(&name)
	}
	select {
	case p.q <- buf:
	default:
		t.m.dropped.WithLabelValues("queue_full").Inc()
	}
	t.mu.Unlock()
	return now, nil
}

// sendLoop posts the packets queued for one peer, in order, over the pooled
// keep-alive client; it ends after a minute without packets.
func (t *Transport) sendLoop(addr string, p *peer) {
	url := t.scheme + "://" + addr + GossipPath
	idle := time.NewTimer(time.Minute)
	defer idle.Stop()
	for {
		select {
		case b := <-p.q:
			to := addr
			if n := p.name.Load(); n != nil {
				to = *n
			}
			t.post(url, addr, to, b)
			idle.Reset(time.Minute)
		case <-idle.C:
			t.mu.Lock()
			if len(p.q) > 0 {
				t.mu.Unlock()
				idle.Reset(time.Minute)
				continue
			}
			delete(t.queues, addr)
			t.mu.Unlock()
			return
		case <-t.done:
			return
		}
	}
}

// post sends one packet to addr, addressed (and signed) to the node to.
func (t *Transport) post(url, addr, to string, b []byte) {
	if t.dropped(addr) {
		return
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return
	}
	req.Header.Set("User-Agent", "") // an empty User-Agent is not sent
	sign(req, t.signing, t.advertise.String(), to, b, t.now())
	resp, err := t.client.Do(req)
	if err != nil {
		t.m.dropped.WithLabelValues("send_failed").Inc()
		t.log.Debug("gossip packet not delivered", "to", addr, "err", err)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	t.peers.answered(to, resp)
	if resp.StatusCode != http.StatusAccepted {
		t.m.dropped.WithLabelValues("refused").Inc()
		t.log.Debug("gossip packet refused", "to", addr, "status", resp.StatusCode)
		return
	}
	t.m.packets.WithLabelValues("out").Inc()
	t.m.bytes.WithLabelValues("out").Add(float64(len(b)))
}

// PacketCh yields the packets received.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh yields the stream connections received.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// DialTimeout opens a stream to addr.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream: an HTTP/1.1 Upgrade of GossipPath,
// after which the connection carries memberlist's stream protocol. Bytes
// the server sent after its 101 answer and that were read with it are kept.
func (t *Transport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.dropped(addr.Addr) {
		return nil, fmt.Errorf("link to %s is cut", addr.Addr)
	}
	deadline := time.Now().Add(timeout)
	dialer := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	if t.tlsConfig != nil {
		conn, err = tls.DialWithDialer(dialer, "tcp", addr.Addr, t.tlsConfig)
	} else {
		conn, err = dialer.Dial("tcp", addr.Addr)
	}
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(deadline)
	req, _ := http.NewRequest(http.MethodPost, t.scheme+"://"+addr.Addr+GossipPath, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", upgradeProto)
	to := addr.Name
	if to == "" {
		to = addr.Addr
	}
	sign(req, t.signing, t.advertise.String(), to, nil, t.now())
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp.Body.Close()
	t.peers.answered(to, resp)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("stream to %s refused: %s", addr.Addr, resp.Status)
	}
	conn.SetDeadline(time.Time{})
	t.m.streams.WithLabelValues("out").Inc()
	return &bufferedConn{Conn: conn, r: br}, nil
}

// bufferedConn reads first what a bufio.Reader already holds.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// Shutdown stops the transport.
func (t *Transport) Shutdown() error {
	if t.shutdown.CompareAndSwap(false, true) {
		close(t.done)
	}
	return nil
}

// ServeHTTP takes packets (POST, answered 202) and streams (POST with
// Upgrade: flowg-gossip, answered 101). With a cookie every request must be
// signed; a rejected one is answered 401 and counted.
func (t *Transport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	upgrade := r.Header.Get("Upgrade") == upgradeProto
	body, ok := t.authenticated(w, r, MaxPacket, nil)
	if !ok {
		return
	}
	if t.shutdown.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	from := r.RemoteAddr
	if f := r.Header.Get(hdrFrom); f != "" {
		from = f
	}
	fromAddr, err := net.ResolveTCPAddr("tcp", from)
	if err != nil {
		t.reject(w, r, rejectf("bad_sender", "%v", err))
		return
	}
	if !upgrade {
		now := time.Now()
		select {
		case t.packetCh <- &memberlist.Packet{Buf: body, From: fromAddr, Timestamp: now}:
			t.m.packets.WithLabelValues("in").Inc()
			t.m.bytes.WithLabelValues("in").Add(float64(len(body)))
			w.WriteHeader(http.StatusAccepted)
		default:
			t.m.dropped.WithLabelValues("inbound_full").Inc()
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot upgrade", http.StatusInternalServerError)
		return
	}
	conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+upgradeProto+"\r\n\r\n"); err != nil {
		conn.Close()
		return
	}
	t.m.streams.WithLabelValues("in").Inc()
	select {
	case t.streamCh <- &bufferedConn{Conn: conn, r: brw.Reader}:
	case <-t.done:
		conn.Close()
	}
}

// authenticated reads a request's body once the request is known to come
// from the cluster, and returns it. With a cookie the signature, the
// timestamp, the receiver and the nonce are checked on the headers alone,
// before a byte of the body is read, so that an unauthenticated sender
// costs no memory; then the body is read, up to maxBody bytes (413 beyond),
// and checked against its signed digest. Without a cookie, member (when
// set) says whether the sender's address may send at all.
func (t *Transport) authenticated(w http.ResponseWriter, r *http.Request, maxBody int64, member func(addr string) bool) ([]byte, bool) {
	var digest string
	if t.verify != nil {
		d, err := t.verify.verifyHeaders(r, t.now())
		if err != nil {
			t.reject(w, r, err)
			return nil, false
		}
		digest = d
	} else if member != nil && !member(r.RemoteAddr) {
		t.reject(w, r, errNotMember)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		t.reject(w, r, rejectf("oversize", "body is larger than %d bytes or was cut: %v", maxBody, err))
		return nil, false
	}
	if t.verify != nil {
		if err := verifyBody(digest, body); err != nil {
			t.reject(w, r, err)
			return nil, false
		}
	}
	return body, true
}

// reject answers a refused request and counts it; the log gets at most one
// line every 10 s, so that a flood of bad requests cannot flood the log.
// The answer names the reason (hdrReject) and carries this node's clock
// (hdrTime), so that the sender can tell a clock offset from a cookie
// mismatch.
func (t *Transport) reject(w http.ResponseWriter, r *http.Request, err error) {
	code, status := "unauthenticated", http.StatusUnauthorized
	var re *rejectError
	switch {
	case errors.Is(err, errNotMember):
		code, status = "not_a_member", http.StatusForbidden
	case errors.As(err, &re):
		code = re.code
		switch code {
		case "oversize":
			status = http.StatusRequestEntityTooLarge
		case "bad_sender":
			status = http.StatusBadRequest
		}
	}
	t.m.rejected.WithLabelValues(code).Inc()
	now := time.Now().UnixNano()
	if last := t.lastRejectLog.Load(); now-last > int64(10*time.Second) && t.lastRejectLog.CompareAndSwap(last, now) {
		t.log.Warn("cluster request rejected (one line per 10 s; see flowg_cluster_rejected_requests_total)",
			"remote", r.RemoteAddr, "from", r.Header.Get(hdrFrom), "path", r.URL.Path, "reason", err.Error())
	}
	w.Header().Set(hdrReject, code)
	w.Header().Set(hdrTime, strconv.FormatInt(t.now().UnixMilli(), 10))
	if status == http.StatusRequestEntityTooLarge || status == http.StatusUnauthorized {
		// The body was not read (or not all of it): do not wait for it.
		w.Header().Set("Connection", "close")
	}
	http.Error(w, code+": "+err.Error(), status)
}

// ConfigureServer lets the management server take gossip packets over
// unencrypted HTTP/2 as well as HTTP/1.1; call it before the server serves.
// A TLS server is left as it is.
func ConfigureServer(srv *http.Server) {
	if srv.TLSConfig != nil {
		return
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = p
}

// parseEndpoint is the host:port of a management endpoint URL.
func parseEndpoint(endpoint string) (string, error) {
	e, err := flowg.ParseEndpoint(endpoint)
	if err != nil {
		return "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	return e.HostPort(), nil
}
