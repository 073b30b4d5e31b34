package syslog_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/testwait"
	"github.com/flowg-server/flowg-server/syslog"
)

// TestUDP_PoisonedDatagramCostsOthersNothing: a datagram with more
// structured-data parameters than a record may hold fields, and one whose
// parameter names break the field name limit, are stored alone as raw
// text with the reason; every normal message around them is stored.
func TestUDP_PoisonedDatagramCostsOthersNothing(t *testing.T) {
	l := listen(t, func(c *syslog.Config) { c.FlushInterval = 200 * time.Millisecond })
	conn, err := net.Dial("udp", l.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var many strings.Builder
	many.WriteString("<13>1 2026-01-02T03:04:05Z h app - - [x")
	for i := range 300 {
		fmt.Fprintf(&many, " p%d=\"v\"", i)
	}
	many.WriteString("] poisoned")
	longName := "<13>1 2026-01-02T03:04:05Z h app - - [" + strings.Repeat("n", 300) + " a=\"b\"] long id"
	const normal = 500
	for i := range normal {
		if i == 100 {
			conn.Write([]byte(many.String()))
		}
		if i == 300 {
			conn.Write([]byte(longName))
		}
		fmt.Fprintf(conn, "<13>1 2026-01-02T03:04:05Z h app - - - normal %d", i)
		if i%50 == 0 {
			time.Sleep(5 * time.Millisecond) // stay under the socket buffer
		}
	}
	recs := l.records(t, normal+2)
	seen, poisoned := 0, 0
	for _, r := range recs {
		if err := r.Validate(); err != nil {
			t.Fatalf("a stored record breaks the limits: %v", err)
		}
		switch {
		case strings.HasPrefix(r.Fields["message"], "normal "):
			seen++
		case r.Fields["parse_error"] != "":
			poisoned++
		}
	}
	if seen != normal || poisoned != 2 {
		t.Fatalf("stored %d of %d normal messages and %d poisoned ones (want 2)", seen, normal, poisoned)
	}
}

// TestTCP_ConnectionsPerClient: one client that holds its share of
// connections idle cannot lock out another sender.
func TestTCP_ConnectionsPerClient(t *testing.T) {
	l := listen(t, func(c *syslog.Config) {
		c.Protocol, c.MaxConnections, c.MaxConnectionsPerClient = "tcp", 16, 4
	})
	addr := l.srv.Addr().String()
	dialFrom := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range 20 {
		dialFrom("127.0.0.2") // held idle
	}
	testwait.Eventually(t, 5*time.Second, "16 of the idle client's connections refused", func() bool { return l.dropped("client_connections") >= 16 })
	c := dialFrom("127.0.0.3")
	fmt.Fprintf(c, "<13>1 2026-01-02T03:04:05Z h app - - - from another client\n")
	recs := l.records(t, 1)
	if recs[0].Fields["message"] != "from another client" {
		t.Fatalf("stored %v", recs[0].Fields)
	}
	if l.dropped("client_connections") < 16 {
		t.Fatalf("refused %v connections of the idle client, want 16", l.dropped("client_connections"))
	}
}

// countSink counts what it is handed.
type countSink struct{ n atomic.Int64 }

func (s *countSink) Append(ctx context.Context, stream string, recs []flowg.Record) error {
	s.n.Add(int64(len(recs)))
	return nil
}

// TestClose_RaceWithDialers: senders that keep dialling while Close runs
// never hold it past its deadline (a connection accepted during the close
// sweep used to escape it and keep Close waiting for its idle timeout).
func TestClose_RaceWithDialers(t *testing.T) {
	for i := range 150 {
		c := syslog.DefaultConfig()
		c.Bind, c.Protocol, c.Logger = "127.0.0.1:0", "tcp", slog.New(slog.DiscardHandler)
		srv, err := syslog.Listen(c, &countSink{})
		if err != nil {
			t.Fatal(err)
		}
		srv.Serve()
		addr := srv.Addr().String()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
						defer conn.Close()
					}
				}
			})
		}
		time.Sleep(time.Millisecond) // let the flood begin: Close must race it
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		srv.Close(ctx)
		took := time.Since(start)
		cancel()
		close(stop)
		wg.Wait()
		if took > 2500*time.Millisecond {
			t.Fatalf("try %d: Close took %s with a 2 s deadline", i, took)
		}
	}
}

// TestClose_LeavesNoGoroutine: once Close returns, no goroutine of the
// listener is left, for UDP and for TCP with connections open.
func TestClose_LeavesNoGoroutine(t *testing.T) {
	for _, proto := range []string{"udp", "tcp"} {
		before := runtime.NumGoroutine()
		c := syslog.DefaultConfig()
		c.Bind, c.Protocol, c.Logger = "127.0.0.1:0", proto, slog.New(slog.DiscardHandler)
		sink := &countSink{}
		srv, err := syslog.Listen(c, sink)
		if err != nil {
			t.Fatal(err)
		}
		srv.Serve()
		var conns []net.Conn
		for range 8 {
			conn, err := net.Dial(proto, srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "<13>1 - h app - - - hello\n")
			conns = append(conns, conn)
		}
		testwait.Eventually(t, 5*time.Second, "the 8 messages stored", func() bool { return sink.n.Load() == 8 })
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := srv.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		for _, conn := range conns {
			conn.Close()
		}
		testwait.Goroutines(t, before, time.Second)
	}
}
