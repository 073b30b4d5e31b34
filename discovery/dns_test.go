package discovery

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serveDNS runs a real DNS server (miekg/dns) on loopback UDP and TCP with
// the given SRV answers for _mgmt._tcp.flowg.test; glue adds A records to the
// additional section.
func serveDNS(t *testing.T, srvs []*dns.SRV, glue bool) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(q)
		name := q.Question[0].Name
		switch q.Question[0].Qtype {
		case dns.TypeSRV:
			if name != "_mgmt._tcp.flowg.test." {
				r.Rcode = dns.RcodeNameError
				break
			}
			for _, s := range srvs {
				s := *s
				s.Hdr = dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 5}
				r.Answer = append(r.Answer, &s)
				if glue && s.Target != "." {
					r.Extra = append(r.Extra, &dns.A{Hdr: dns.RR_Header{Name: s.Target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(127, 0, 0, 1)})
				}
			}
		case dns.TypeA:
			if strings.HasPrefix(name, "node") {
				r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(127, 0, 0, 2)})
			}
		}
		r.Compress = true
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			r.Truncate(dnsSize(q))
		}
		w.WriteMsg(r)
	})
	udp, tcp := &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: ln, Handler: h}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return pc.LocalAddr().String()
}

func dnsSize(q *dns.Msg) int {
	if o := q.IsEdns0(); o != nil {
		return int(o.UDPSize())
	}
	return dns.MinMsgSize
}

func srv(target string, port uint16) *dns.SRV { return &dns.SRV{Target: target, Port: port} }

func TestDNS_Peers(t *testing.T) {
	many := make([]*dns.SRV, 1200)
	for i := range many {
		many[i] = srv(fmt.Sprintf("node%d.flowg.test.", i), uint16(10000+i))
	}
	cases := []struct {
		name  string
		srvs  []*dns.SRV
		glue  bool
		want  int
		first string
	}{
		{"two targets with glue", []*dns.SRV{srv("node0.flowg.test.", 9113), srv("node1.flowg.test.", 9114)}, true, 2, "http://127.0.0.1:9113"},
		{"no glue: A lookups", []*dns.SRV{srv("node0.flowg.test.", 9113)}, false, 1, "http://127.0.0.2:9113"},
		{"zero targets", nil, true, 0, ""},
		{"target . and port 0 are skipped", []*dns.SRV{srv(".", 9113), srv("node0.flowg.test.", 0), srv("node1.flowg.test.", 9114)}, true, 1, "http://127.0.0.1:9114"},
		{"1200 records: truncated over UDP, read over TCP, bounded", many, false, MaxSRVTargets, "http://127.0.0.2:10000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := NewDNS(DNSConfig{Name: "_mgmt._tcp.flowg.test", Server: serveDNS(t, c.srvs, c.glue)})
			if err != nil {
				t.Fatal(err)
			}
			peers, err := d.Peers(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(peers) != c.want || c.want > 0 && peers[0].Endpoint != c.first {
				t.Fatalf("%d peers, first %+v; want %d, first %s", len(peers), peers[:min(1, len(peers))], c.want, c.first)
			}
			// The records' TTL (5 s) paces the next lookup; no record, no opinion.
			if want := map[bool]time.Duration{true: 5 * time.Second, false: 0}[len(c.srvs) > 0]; d.Refresh() != want {
				t.Errorf("Refresh() = %s, want %s", d.Refresh(), want)
			}
		})
	}
	d, err := NewDNS(DNSConfig{Name: "_mgmt._tcp.nope.test", Server: serveDNS(t, nil, true)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Peers(context.Background()); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Fatalf("unknown name: %v", err)
	}
}
