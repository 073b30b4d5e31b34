package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	flowg "github.com/flowg-server/flowg-server"
)

// MaxSRVTargets bounds the peers one SRV answer may give.
const MaxSRVTargets = 1000

// DNS finds peers through SRV records: a Kubernetes headless Service
// (_mgmt._tcp.flowg.<ns>.svc.cluster.local), Consul DNS
// (flowg.service.consul) or a plain zone. Each SRV target and port is a
// management endpoint; targets are resolved from the answer's additional
// section, else with A and AAAA queries to the same server.
type DNS struct {
	cfg DNSConfig
	ttl atomic.Int64 // the last answer's lowest SRV TTL in seconds, -1 for none
}

// NewDNS fills in the config's defaults (the system's nameserver when no
// server is given) and checks it.
func NewDNS(cfg DNSConfig) (*DNS, error) {
	if cfg.Name == "" {
		return nil, errors.New("--cluster-dns-name is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Scheme == "" {
		cfg.Scheme = "http"
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Server == "" {
		var err error
		if cfg.Server, err = SystemDNSServer(); err != nil {
			return nil, fmt.Errorf("--cluster-dns-server: %w", err)
		}
	}
	return &DNS{cfg: cfg}, nil
}

// Interval is how often the loop should ask this source again.
func (d *DNS) Interval() time.Duration { return d.cfg.Interval }

// Name returns "dns".
func (*DNS) Name() string { return "dns" }

// SystemDNSServer returns the first nameserver of /etc/resolv.conf.
func SystemDNSServer() (string, error) {
	cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return "", fmt.Errorf("cannot read /etc/resolv.conf: %w", err)
	}
	if len(cfg.Servers) == 0 {
		return "", errors.New("/etc/resolv.conf names no nameserver")
	}
	return net.JoinHostPort(cfg.Servers[0], cfg.Port), nil
}

// Peers looks the SRV name up.
func (d *DNS) Peers(ctx context.Context) ([]flowg.Peer, error) {
	r, err := d.query(ctx, d.cfg.Name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	extra := map[string][]net.IP{}
	for _, rr := range r.Extra {
		switch a := rr.(type) {
		case *dns.A:
			extra[strings.ToLower(a.Hdr.Name)] = append(extra[strings.ToLower(a.Hdr.Name)], a.A)
		case *dns.AAAA:
			extra[strings.ToLower(a.Hdr.Name)] = append(extra[strings.ToLower(a.Hdr.Name)], a.AAAA)
		}
	}
	var peers []flowg.Peer
	seen := map[string]bool{}
	ttl := int64(-1)
	for _, rr := range r.Answer {
		srv, ok := rr.(*dns.SRV)
		if !ok || srv.Target == "." || srv.Port == 0 {
			continue // "." means no service; port 0 cannot be reached
		}
		if ttl < 0 || int64(srv.Hdr.Ttl) < ttl {
			ttl = int64(srv.Hdr.Ttl)
		}
		if len(peers) >= MaxSRVTargets {
			break
		}
		target := strings.ToLower(srv.Target)
		ips := extra[target]
		if len(ips) == 0 {
			if ips, err = d.resolve(ctx, target); err != nil {
				return peers, err
			}
		}
		for _, ip := range ips {
			ep := d.cfg.Scheme + "://" + net.JoinHostPort(ip.String(), strconv.Itoa(int(srv.Port)))
			if !seen[ep] {
				seen[ep] = true
				peers = append(peers, flowg.Peer{Endpoint: ep})
			}
			break // one address per target: the first the server gives
		}
	}
	d.ttl.Store(ttl)
	return peers, nil
}

// Refresh is the lowest TTL of the last answer's SRV records, at least 1 s
// (Consul DNS and dnsmasq answer with TTL 0 unless configured otherwise),
// or 0 when the answer had none: the loop asks again then when it is
// sooner than its interval.
func (d *DNS) Refresh() time.Duration {
	ttl := d.ttl.Load()
	if ttl < 0 {
		return 0
	}
	return max(time.Duration(ttl)*time.Second, time.Second)
}

// resolve looks up A, then AAAA records of a target.
func (d *DNS) resolve(ctx context.Context, name string) ([]net.IP, error) {
	var ips []net.IP
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r, err := d.query(ctx, name, t)
		if err != nil {
			continue
		}
		for _, rr := range r.Answer {
			switch a := rr.(type) {
			case *dns.A:
				ips = append(ips, a.A)
			case *dns.AAAA:
				ips = append(ips, a.AAAA)
			}
		}
		if len(ips) > 0 {
			return ips, nil
		}
	}
	return nil, fmt.Errorf("SRV target %s has no A or AAAA record", name)
}

// query asks over UDP with EDNS0, and again over TCP when the answer is
// truncated.
func (d *DNS) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	timeout := d.cfg.Timeout
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(4096, false)
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, _, err := (&dns.Client{Net: "udp", Timeout: timeout, UDPSize: 4096}).ExchangeContext(qctx, m, d.cfg.Server)
	if err == nil && r.Truncated {
		r, _, err = (&dns.Client{Net: "tcp", Timeout: timeout}).ExchangeContext(qctx, m, d.cfg.Server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s at %s: %w", dns.TypeToString[qtype], name, d.cfg.Server, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("%s %s at %s: %s", dns.TypeToString[qtype], name, d.cfg.Server, dns.RcodeToString[r.Rcode])
	}
	return r, nil
}
