package httpapi

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnLimits bound the connections one listener holds open.
type ConnLimits struct {
	// Max bounds the open connections of the listener.
	Max int
	// PerClient bounds the open connections from one IP address.
	PerClient int
}

// RegisterFlags registers --<name>-max-connections and
// --<name>-max-connections-per-client; what names the listener in the help.
func (l *ConnLimits) RegisterFlags(fs *flag.FlagSet, name, what string) {
	fs.IntVar(&l.Max, name+"-max-connections", l.Max, "open connections "+what+" holds at most; more are closed at once")
	fs.IntVar(&l.PerClient, name+"-max-connections-per-client", l.PerClient, "open connections "+what+" holds at most from one IP address")
}

// Validate checks the limits registered under name.
func (l ConnLimits) Validate(name string) error {
	if l.Max < 1 {
		return fmt.Errorf("--%s-max-connections %d: must be at least 1", name, l.Max)
	}
	if l.PerClient < 1 {
		return fmt.Errorf("--%s-max-connections-per-client %d: must be at least 1", name, l.PerClient)
	}
	return nil
}

// LimitListener wraps ln so that it holds at most lim.Max connections, and
// at most lim.PerClient from one IP address; a connection over either is
// closed as soon as it is accepted, counted and logged (one line per 10 s),
// so that neither one client nor a crowd can take the file descriptors the
// node needs for its peers, its stores and its health checks. Accept never
// blocks on the limit: a health probe is refused or served at once, never
// queued behind a full listener. (golang.org/x/net/netutil.LimitListener
// blocks Accept at the limit and has no per-client bound, hence this.)
// Wrap the TCP listener, before any TLS, so that a refused client costs
// no handshake.
func LimitListener(ln net.Listener, server string, lim ConnLimits, log *slog.Logger, reg prometheus.Registerer) (net.Listener, error) {
	l := &limitListener{Listener: ln, server: server, lim: lim, log: log, per: map[netip.Addr]int{}}
	l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "flowg_connections_refused_total",
		Help:        "Connections closed at once because the listener was at a limit, by reason (total, client).",
		ConstLabels: prometheus.Labels{"server": server},
	}, []string{"reason"})
	l.open = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flowg_connections_open", Help: "Connections open on the listener.", ConstLabels: prometheus.Labels{"server": server},
	}, func() float64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return float64(l.total)
	})
	l.refused.WithLabelValues("total")
	l.refused.WithLabelValues("client")
	if reg != nil {
		if err := reg.Register(l.refused); err != nil {
			return nil, err
		}
		if err := reg.Register(l.open); err != nil {
			return nil, err
		}
	}
	return l, nil
}

type limitListener struct {
	net.Listener
	server  string
	lim     ConnLimits
	log     *slog.Logger
	refused *prometheus.CounterVec
	open    prometheus.GaugeFunc
	lastLog atomic.Int64

	mu    sync.Mutex
	total int
	per   map[netip.Addr]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var ip netip.Addr
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip, _ = netip.AddrFromSlice(ta.IP)
			ip = ip.Unmap()
		}
		reason := ""
		l.mu.Lock()
		switch {
		case l.total >= l.lim.Max:
			reason = "total"
		case l.per[ip] >= l.lim.PerClient:
			reason = "client"
		default:
			l.total++
			l.per[ip]++
		}
		l.mu.Unlock()
		if reason == "" {
			return &limitedConn{Conn: c, l: l, ip: ip}, nil
		}
		c.Close()
		l.refused.WithLabelValues(reason).Inc()
		now := time.Now().UnixNano()
		if last := l.lastLog.Load(); now-last > int64(10*time.Second) && l.lastLog.CompareAndSwap(last, now) {
			l.log.Warn("connection refused: the listener is at its connection limit (one line per 10 s; see flowg_connections_refused_total)",
				"server", l.server, "limit", reason, "remote", c.RemoteAddr().String(), "max", l.lim.Max, "per_client", l.lim.PerClient)
		}
	}
}

func (l *limitListener) release(ip netip.Addr) {
	l.mu.Lock()
	l.total--
	if l.per[ip]--; l.per[ip] <= 0 {
		delete(l.per, ip)
	}
	l.mu.Unlock()
}

type limitedConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
