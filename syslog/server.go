package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/flagvalue"
	"github.com/flowg-server/flowg-server/internal/tlsfiles"
)

// Sink stores batches of records; it returns once they are committed.
type Sink interface {
	Append(ctx context.Context, stream string, recs []flowg.Record) error
}

// Config says how the listener behaves.
type Config struct {
	// Bind is the address to listen on. Default ":5514".
	Bind string
	// Protocol is "udp+tcp" (both on the same port), "udp" or "tcp".
	// Default "udp+tcp". With TLS only TCP is opened: syslog has no TLS
	// over UDP, and plaintext beside a TLS port would defeat it.
	Protocol string
	// TLS, when set, serves TCP over TLS (with client certificates when its
	// ClientAuth asks for them).
	TLS *tls.Config
	// Identify, when set, gives fields that are set on every record of a
	// TLS connection, from its verified client certificate: the node's
	// Consul Connect listener sets the sender's mesh identity with it.
	Identify func(*tls.ConnectionState) map[string]string
	// TLSFiles, when on and TLS is nil, are loaded into TLS by Listen
	// (--syslog-tls, --syslog-tls-cert, --syslog-tls-key,
	// --syslog-tls-client-ca).
	TLSFiles tlsfiles.Server
	// Stream is the stream records go to. Default "syslog".
	Stream string
	// AllowOrigins restricts senders to these networks; empty allows all.
	// A refused sender is counted, never stored.
	AllowOrigins []netip.Prefix
	// MaxMessageSize bounds one message, in bytes; larger ones are dropped
	// and counted. Default 64 KiB.
	MaxMessageSize int
	// MaxConnections bounds the open TCP connections. Default 1024.
	MaxConnections int
	// MaxConnectionsPerClient bounds the open TCP connections from one IP
	// address, so that one client cannot take every connection. Default 32.
	MaxConnectionsPerClient int
	// IdleTimeout closes a TCP connection that sends nothing for this long.
	// Default 5m.
	IdleTimeout time.Duration
	// QueueSize bounds the messages parsed and not yet stored. A full queue
	// drops UDP messages (counted) and holds TCP senders back. Default 65536.
	QueueSize int
	// BatchSize and FlushInterval bound a batch handed to the sink.
	// Defaults 2000 and 100ms.
	BatchSize     int
	FlushInterval time.Duration
	// UDPReaders is the number of goroutines reading the UDP socket.
	// Default 2.
	UDPReaders int
	// Logger receives the listener's log lines. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the listener's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Bind: ":5514", Protocol: "udp+tcp", Stream: "syslog",
		MaxMessageSize: 64 << 10, MaxConnections: 1024, MaxConnectionsPerClient: 32, IdleTimeout: 5 * time.Minute,
		QueueSize: 65536, BatchSize: 2000, FlushInterval: 100 * time.Millisecond, UDPReaders: 2,
	}
}

// RegisterFlags registers the listener's flags (--syslog-*).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Bind, "syslog-bind", c.Bind, "address of the syslog listener")
	fs.StringVar(&c.Protocol, "syslog-protocol", c.Protocol, "udp+tcp (both on the same port; TCP alone with --syslog-tls), udp or tcp")
	c.TLSFiles.RegisterFlags(fs, "syslog", "the syslog listener", true)
	fs.Lookup("syslog-tls").Usage = "serve syslog over TLS, on TCP only"
	fs.StringVar(&c.Stream, "syslog-stream", c.Stream, "stream that syslog messages go to")
	fs.Var((*flagvalue.PrefixList)(&c.AllowOrigins), "syslog-allow-origin", "IP or CIDR allowed to send syslog (repeatable, or comma-separated); default: any")
	fs.IntVar(&c.MaxConnections, "syslog-max-connections", c.MaxConnections, "open syslog TCP connections at most")
	fs.IntVar(&c.MaxConnectionsPerClient, "syslog-max-connections-per-client", c.MaxConnectionsPerClient, "open syslog TCP connections at most from one IP address")
}

// Validate checks the config; each error names its flag.
func (c Config) Validate() error {
	if err := flagvalue.CheckHostPort(c.Bind); err != nil {
		return fmt.Errorf("--syslog-bind %q: %w", c.Bind, err)
	}
	if err := c.TLSFiles.Validate(); err != nil {
		return err
	}
	switch {
	case c.Protocol != "udp" && c.Protocol != "tcp" && c.Protocol != "udp+tcp":
		return fmt.Errorf("--syslog-protocol %q: use udp+tcp, udp or tcp", c.Protocol)
	case (c.TLS != nil || c.TLSFiles.On) && c.Protocol == "udp":
		return errors.New("--syslog-tls needs TCP: --syslog-protocol tcp or udp+tcp")
	case c.MaxConnections < 1:
		return fmt.Errorf("--syslog-max-connections %d: must be at least 1", c.MaxConnections)
	case c.MaxConnectionsPerClient < 1:
		return fmt.Errorf("--syslog-max-connections-per-client %d: must be at least 1", c.MaxConnectionsPerClient)
	case c.MaxMessageSize < 480 || c.MaxMessageSize > 1<<20:
		return errors.New("syslog: max message size must be from 480 bytes to 1 MiB")
	case c.QueueSize < 1 || c.BatchSize < 1 || c.FlushInterval <= 0 || c.IdleTimeout <= 0 || c.UDPReaders < 1:
		return errors.New("syslog: queue, batch, flush, idle and reader settings must be positive")
	}
	if err := flowg.ValidateStreamName(c.Stream); err != nil {
		return fmt.Errorf("--syslog-stream: %w", err)
	}
	return nil
}

// Server is a running syslog listener.
type Server struct {
	cfg   Config
	sink  Sink
	log   *slog.Logger
	m     *metrics
	queue chan flowg.Record

	udp   net.PacketConn
	tcp   net.Listener
	conns chan struct{} // a token per open TCP connection

	readers   sync.WaitGroup // goroutines that read from the network
	batchers  sync.WaitGroup
	closeOnce sync.Once
	drained   chan struct{} // closed once every goroutine has ended
	// stop is cancelled when Close's deadline passes: a batcher still
	// storing and a reader held back by a full queue give up then.
	stop    context.Context
	stopNow context.CancelFunc
	mu      sync.Mutex
	closed  bool
	open    map[net.Conn]struct{}
	perIP   map[netip.Addr]int
	lastLog [3]atomic.Int64 // unix ns of the last line of each rate-limited kind
}

// The rate-limited log lines of lastLog.
const (
	logOrigin    = iota // a sender refused by the origin list
	logPlaintext        // a plaintext client on the TLS port
	logConnLimit        // a connection over a limit
)

// TCP reports whether the listener takes TCP (and so acknowledges what it
// stores by holding senders back).
func (c Config) TCP() bool { return c.Protocol != "udp" }

// UDP reports whether the listener opens UDP: asked for, and no TLS.
func (c Config) UDP() bool { return c.Protocol != "tcp" && c.TLS == nil && !c.TLSFiles.On }

// Listen opens the listener; Serve starts taking messages.
func Listen(cfg Config, sink Sink) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TLS == nil {
		var err error
		if cfg.TLS, err = cfg.TLSFiles.Load(); err != nil {
			return nil, err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg: cfg, sink: sink, log: cfg.Logger.With("component", "syslog"), m: newMetrics(cfg.Registerer),
		queue: make(chan flowg.Record, cfg.QueueSize), conns: make(chan struct{}, cfg.MaxConnections),
		open: map[net.Conn]struct{}{}, perIP: map[netip.Addr]int{}, drained: make(chan struct{}),
	}
	s.stop, s.stopNow = context.WithCancel(context.Background())
	if err := s.listen(); err != nil {
		return nil, err
	}
	if cfg.Protocol == "udp+tcp" && !cfg.UDP() {
		s.log.Info("syslog over TLS: TCP only, no UDP beside it")
	}
	return s, nil
}

// listen opens TCP, then UDP on the same port (with port 0, the one TCP
// got; tried again a few times when UDP has it taken).
func (s *Server) listen() error {
	var err error
	for try := 0; ; try++ {
		addr := s.cfg.Bind
		if s.cfg.TCP() {
			// TLS is done per connection (see serveConn), so that a
			// plaintext client is told apart and counted.
			if s.tcp, err = net.Listen("tcp", addr); err != nil {
				return err
			}
			if s.cfg.UDP() {
				host, _, _ := net.SplitHostPort(addr)
				_, port, _ := net.SplitHostPort(s.tcp.Addr().String())
				addr = net.JoinHostPort(host, port)
			}
		}
		if !s.cfg.UDP() {
			return nil
		}
		if s.udp, err = net.ListenPacket("udp", addr); err == nil {
			if uc, ok := s.udp.(*net.UDPConn); ok {
				// A large socket buffer absorbs bursts while a batch commits.
				uc.SetReadBuffer(16 << 20)
			}
			return nil
		}
		if s.tcp != nil {
			s.tcp.Close()
		}
		if _, port, _ := net.SplitHostPort(s.cfg.Bind); port != "0" || try == 4 {
			return err
		}
	}
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() net.Addr {
	if s.tcp != nil {
		return s.tcp.Addr()
	}
	return s.udp.LocalAddr()
}

// Serve takes messages until Close.
func (s *Server) Serve() {
	for range 2 {
		s.batchers.Go(s.batcher)
	}
	if s.udp != nil {
		for range s.cfg.UDPReaders {
			s.readers.Go(s.readUDP)
		}
	}
	if s.tcp != nil {
		s.readers.Go(s.acceptTCP)
	}
	proto := map[[2]bool]string{{true, true}: "udp+tcp", {true, false}: "udp", {false, true}: "tcp"}[[2]bool{s.udp != nil, s.tcp != nil}]
	s.log.Info("syslog listening", "addr", s.Addr().String(), "protocol", proto, "tls", s.cfg.TLS != nil, "stream", s.cfg.Stream)
}

// Close stops taking messages, closes every connection, and returns once
// every message already read is stored and every goroutine of the
// listener has ended, or when ctx ends: then what is not stored yet is
// given up (the batchers and the readers waiting on a full queue stop at
// once) and the error says how much.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true // a connection accepted from now on is closed at once
		if s.udp != nil {
			s.udp.Close()
		}
		if s.tcp != nil {
			s.tcp.Close()
			for c := range s.open {
				c.Close()
			}
		}
		s.mu.Unlock()
		go func() {
			s.readers.Wait()
			close(s.queue)
			s.batchers.Wait()
			close(s.drained)
		}()
	})
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		pending := len(s.queue)
		s.stopNow()
		<-s.drained
		return fmt.Errorf("syslog: %d messages not stored before the deadline: %w", pending, ctx.Err())
	}
}

func (s *Server) allowed(addr net.Addr) bool {
	if len(s.cfg.AllowOrigins) == 0 {
		return true
	}
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.AllowOrigins {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (s *Server) readUDP() {
	p := NewParser()
	// One byte more than the limit tells an oversize datagram apart.
	buf := make([]byte, s.cfg.MaxMessageSize+1)
	for {
		n, addr, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("syslog UDP read failed", "err", err)
			continue
		}
		s.m.received.WithLabelValues("udp").Inc()
		switch {
		case !s.allowed(addr):
			s.refuseOrigin(addr)
		case n > s.cfg.MaxMessageSize:
			s.m.dropped.WithLabelValues("oversize").Inc()
		default:
			s.enqueue(p.Parse(buf[:n], time.Now().UTC()), false)
		}
	}
}

// enqueue hands a record to the batchers; a full queue drops it unless
// wait is set (TCP, whose senders can be held back).
func (s *Server) enqueue(rec flowg.Record, wait bool) {
	if _, ok := rec.Fields["parse_error"]; ok {
		s.m.parseErrors.Inc()
	}
	if wait {
		select {
		case s.queue <- rec:
		case <-s.stop.Done():
			s.m.dropped.WithLabelValues("shutdown").Inc()
		}
		return
	}
	select {
	case s.queue <- rec:
	default:
		s.m.dropped.WithLabelValues("queue_full").Inc()
	}
}

func (s *Server) acceptTCP() {
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("syslog accept failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !s.allowed(c.RemoteAddr()) {
			s.refuseOrigin(c.RemoteAddr())
			c.Close()
			continue
		}
		select {
		case s.conns <- struct{}{}:
		default:
			s.refuseConn(c, "connections", "the listener holds --syslog-max-connections connections")
			continue
		}
		ip := ipOf(c.RemoteAddr())
		s.mu.Lock()
		switch {
		case s.closed:
			// Close swept the open connections already; this one escaped
			// the sweep and would hold Close up.
			s.mu.Unlock()
			<-s.conns
			c.Close()
			return
		case s.perIP[ip] >= s.cfg.MaxConnectionsPerClient:
			s.mu.Unlock()
			<-s.conns
			s.refuseConn(c, "client_connections", "this client holds --syslog-max-connections-per-client connections")
			continue
		}
		s.perIP[ip]++
		s.open[c] = struct{}{}
		s.mu.Unlock()
		s.readers.Go(func() { s.serveConn(c, ip) })
	}
}

// refuseConn closes a connection over a limit, counts it, and logs at most
// one line every 10 s.
func (s *Server) refuseConn(c net.Conn, reason, why string) {
	s.m.dropped.WithLabelValues(reason).Inc()
	s.rateLog(logConnLimit, "syslog connection refused: "+why, "remote", c.RemoteAddr().String())
	c.Close()
}

// refuseOrigin counts a sender the origin list refuses, and logs at most
// one line every 10 s.
func (s *Server) refuseOrigin(addr net.Addr) {
	s.m.dropped.WithLabelValues("origin").Inc()
	s.rateLog(logOrigin, "syslog sender refused: not in --syslog-allow-origin", "remote", addr.String())
}

// rateLog logs msg at most once every 10 s for its kind, saying where the
// rest are counted.
func (s *Server) rateLog(kind int, msg string, args ...any) {
	now := time.Now().UnixNano()
	if last := s.lastLog[kind].Load(); now-last > int64(10*time.Second) && s.lastLog[kind].CompareAndSwap(last, now) {
		s.log.Warn(msg+" (one line per 10 s; see flowg_syslog_dropped_total)", args...)
	}
}

// startTLS reads the first byte of a connection to the TLS port: a TLS
// client starts with a handshake record (0x16); anything else is a
// plaintext sender aimed at the wrong port, counted, logged and closed
// instead of failing as a handshake with no trace.
func (s *Server) startTLS(c net.Conn) (*tls.Conn, bool) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return nil, false
	}
	if first[0] != 0x16 {
		s.m.dropped.WithLabelValues("plaintext_on_tls").Inc()
		s.rateLog(logPlaintext, "syslog client sent plaintext to the TLS port", "remote", c.RemoteAddr().String())
		return nil, false
	}
	c.SetReadDeadline(time.Time{})
	return tls.Server(&peekedConn{Conn: c, first: first[:]}, s.cfg.TLS), true
}

// peekedConn gives back the bytes read ahead before the connection's own.
type peekedConn struct {
	net.Conn
	first []byte
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

func ipOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

func (s *Server) serveConn(c net.Conn, ip netip.Addr) {
	s.m.connections.Inc()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.open, c)
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
		s.mu.Unlock()
		<-s.conns
		s.m.connections.Dec()
	}()
	var stamp map[string]string
	var conn net.Conn = c
	if s.cfg.TLS != nil {
		tc, ok := s.startTLS(c)
		if !ok {
			return
		}
		conn = tc
	}
	if tc, ok := conn.(*tls.Conn); ok && s.cfg.Identify != nil {
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			s.log.Debug("syslog TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
		tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		stamp = s.cfg.Identify(&st)
	}
	p := NewParser()
	fr := NewFramer(deadlineReader{conn, s.cfg.IdleTimeout}, s.cfg.MaxMessageSize)
	for {
		msg, err := fr.Next()
		if errors.Is(err, ErrFrameTooLarge) {
			s.m.dropped.WithLabelValues("oversize").Inc()
			if fr.octets {
				s.log.Debug("syslog connection closed: oversize frame", "remote", c.RemoteAddr().String())
				return
			}
			continue
		}
		if err != nil {
			return
		}
		s.m.received.WithLabelValues("tcp").Inc()
		rec := p.Parse(msg, time.Now().UTC())
		if stamp != nil {
			stampFields(rec, stamp)
		}
		s.enqueue(rec, true)
	}
}

// stampFields sets the connection's fields on a record; a record that
// would then hold too many fields loses its structured data (named in
// parse_error), never the stamp.
func stampFields(rec flowg.Record, stamp map[string]string) {
	if len(rec.Fields)+len(stamp) > flowg.MaxFieldsPerRecord {
		for k := range rec.Fields {
			if strings.HasPrefix(k, "sd.") {
				delete(rec.Fields, k)
			}
		}
		rec.Fields["parse_error"] = "structured data dropped: too many fields with the sender's identity"
	}
	for k, v := range stamp {
		rec.Fields[k] = v
	}
}

// deadlineReader sets an idle deadline before every read.
type deadlineReader struct {
	c    net.Conn
	idle time.Duration
}

func (d deadlineReader) Read(b []byte) (int, error) {
	d.c.SetReadDeadline(time.Now().Add(d.idle))
	return d.c.Read(b)
}

// batcher stores records in batches of up to BatchSize, at least every
// FlushInterval, until the queue is closed and empty.
func (s *Server) batcher() {
	batch := make([]flowg.Record, 0, s.cfg.BatchSize)
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		err := s.sink.Append(s.stop, s.cfg.Stream, batch)
		if err != nil {
			s.m.dropped.WithLabelValues("store").Add(float64(len(batch)))
			s.log.Error("cannot store syslog messages", "records", len(batch), "err", err)
		} else {
			s.m.stored.Add(float64(len(batch)))
		}
		batch = make([]flowg.Record, 0, s.cfg.BatchSize)
	}
	for {
		select {
		case rec, ok := <-s.queue:
			if !ok {
				flush()
				return
			}
			batch = append(batch, rec)
			if len(batch) == s.cfg.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}
