package syslog_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/testcert"
	"github.com/flowg-server/flowg-server/internal/testwait"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/store/storetest"
	"github.com/flowg-server/flowg-server/syslog"
)

type listener struct {
	srv *syslog.Server
	st  *store.Store
	reg *prometheus.Registry
}

func listen(t *testing.T, mutate func(*syslog.Config)) *listener {
	t.Helper()
	st := storetest.Open(t)
	c := syslog.DefaultConfig()
	c.Bind = "127.0.0.1:0"
	c.FlushInterval = 10 * time.Millisecond
	c.Logger = slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	c.Registerer = reg
	if mutate != nil {
		mutate(&c)
	}
	srv, err := syslog.Listen(c, st.Logs)
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() { srv.Close(context.Background()) })
	return &listener{srv, st, reg}
}

// records waits until the syslog stream holds n records and returns them.
func (l *listener) records(t *testing.T, n int) []flowg.Record {
	t.Helper()
	var recs []flowg.Record
	testwait.Eventually(t, 10*time.Second, fmt.Sprintf("%d records in the syslog stream", n), func() bool {
		p, err := l.st.Logs.Query(context.Background(), flowg.Query{Stream: "syslog", Limit: 10_000, Ascending: true})
		recs = p.Records
		return err == nil && len(p.Records) >= n
	})
	return recs
}

func (l *listener) dropped(reason string) float64 {
	return l.counter("flowg_syslog_dropped_total", reason)
}

// counter is the value of a counter with one label.
func (l *listener) counter(name, label string) float64 {
	mfs, _ := l.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.Metric {
				if m.Label[0].GetValue() == label {
					return m.Counter.GetValue()
				}
			}
		}
	}
	return -1
}

func TestUDP(t *testing.T) {
	l := listen(t, func(c *syslog.Config) { c.MaxMessageSize = 1024 })
	c, err := net.Dial("udp", l.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, `<34>1 2003-10-11T22:14:15.003Z host su - ID47 - udp 5424`)
	fmt.Fprint(c, `<13>Oct 11 22:14:15 host app[1]: udp 3164`)
	c.Write([]byte(strings.Repeat("garbage ", 100))) // under the limit: kept raw, with parse_error
	c.Write([]byte(strings.Repeat("x", 2000)))       // over the limit: dropped, counted
	recs := l.records(t, 3)
	if recs[0].Fields["message"] != "udp 5424" || recs[0].Fields["msgid"] != "ID47" || recs[1].Fields["message"] != "udp 3164" ||
		!strings.HasPrefix(recs[2].Fields["message"], "garbage garbage") || recs[2].Fields["parse_error"] == "" {
		t.Fatalf("records = %v", recs)
	}
	testwait.Eventually(t, 5*time.Second, "one oversize drop", func() bool { return l.dropped("oversize") == 1 })
}

func TestTCP_FramingsAndShutdown(t *testing.T) {
	l := listen(t, func(c *syslog.Config) { c.Protocol = "tcp"; c.MaxMessageSize = 1024 })
	counted, _ := net.Dial("tcp", l.srv.Addr().String())
	lines, _ := net.Dial("tcp", l.srv.Addr().String())
	msg := `<14>1 2026-01-01T00:00:00Z h a - - - octet counted with` + "\n" + `a newline`
	fmt.Fprintf(counted, "%d %s", len(msg), msg)
	fmt.Fprint(lines, "<14>Jan  1 00:00:01 h a: line one\n<14>Jan  1 00:00:02 h a: line two\n")
	fmt.Fprint(lines, "<14>"+strings.Repeat("x", 2000)+"\n<14>Jan  1 00:00:03 h a: after an oversize line\n")
	for i := range 500 {
		fmt.Fprintf(lines, "<14>Jan  1 00:00:04 h a: burst %d\n", i)
	}
	lines.Close()
	// Close returns only once every message read is stored: once the
	// listener has read them all, Close, then count without waiting.
	testwait.Eventually(t, 5*time.Second, "504 messages read", func() bool { return l.counter("flowg_syslog_received_total", "tcp") >= 504 })
	if err := l.srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u := l.st.Logs.Usage("syslog"); u.Records != 504 {
		t.Fatalf("%d records stored when Close returned, want 504", u.Records)
	}
	recs := l.records(t, 504)
	byMsg := map[string]bool{}
	for _, r := range recs {
		byMsg[r.Fields["message"]] = true
	}
	for _, m := range []string{"octet counted with\na newline", "line one", "line two", "after an oversize line", "burst 499"} {
		if !byMsg[m] {
			t.Errorf("message %q not stored", m)
		}
	}
	if got := l.dropped("oversize"); got != 1 {
		t.Errorf("oversize drops = %v, want 1", got)
	}
	counted.Close()
}

func TestTCP_OctetCountTooLargeClosesConnection(t *testing.T) {
	l := listen(t, func(c *syslog.Config) { c.Protocol = "tcp"; c.MaxMessageSize = 1024 })
	c, _ := net.Dial("tcp", l.srv.Addr().String())
	defer c.Close()
	fmt.Fprint(c, "99999999 <14>1 - - - - - -")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection stayed open after an oversize frame")
	}
	if got := l.dropped("oversize"); got != 1 {
		t.Errorf("oversize drops = %v, want 1", got)
	}
}

func TestAllowOrigin_RefusedIsCountedNotStored(t *testing.T) {
	l := listen(t, func(c *syslog.Config) { c.AllowOrigins = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	c, _ := net.Dial("udp", l.srv.Addr().String())
	defer c.Close()
	fmt.Fprint(c, "<14>1 - - - - - - refused")
	testwait.Eventually(t, 5*time.Second, "the refused datagram counted", func() bool { return l.dropped("origin") == 1 })
	if u := l.st.Logs.Usage("syslog"); u.Records != 0 {
		t.Fatalf("a refused sender's message was stored")
	}
}

func TestTLS_ClientCertificates(t *testing.T) {
	server, client := testcert.New(t, "server"), testcert.New(t, "client")
	serverCert, pool, clientCert, clientPool := server.TLS, server.Pool, client.TLS, client.Pool
	l := listen(t, func(c *syslog.Config) {
		c.Protocol = "tcp"
		c.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: clientPool, ClientAuth: tls.RequireAndVerifyClientCert}
	})
	good, err := tls.Dial("tcp", l.srv.Addr().String(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}})
	if err != nil {
		t.Fatal(err)
	}
	msg := `<14>1 2026-01-01T00:00:00Z h a - - - over TLS`
	fmt.Fprintf(good, "%d %s", len(msg), msg)
	good.Close()
	if recs := l.records(t, 1); recs[0].Fields["message"] != "over TLS" {
		t.Fatalf("records = %v", recs)
	}
	bad, err := tls.Dial("tcp", l.srv.Addr().String(), &tls.Config{RootCAs: pool})
	if err == nil {
		fmt.Fprintf(bad, "%d %s", len(msg), msg)
		bad.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = bad.Read(make([]byte, 1))
		bad.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if err := l.srv.Close(context.Background()); err != nil { // stores what it read
		t.Fatal(err)
	}
	if u := l.st.Logs.Usage("syslog"); u.Records != 1 {
		t.Fatalf("%d records after the refused client, want 1", u.Records)
	}
}
