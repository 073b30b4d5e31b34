package syslog_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/store/storetest"
	"github.com/flowg-server/flowg-server/syslog"
)

// benchMessages is the number of messages of each UDP trial.
const benchMessages = 1_000_000

var benchLine = []byte(`<165>1 2026-11-25T10:00:00.123Z web01.example.net nginx 4242 ACCESS [req@1 id="abc"] GET /index.html 200 1534 0.004`)

// sendUDP sends n messages to addr at rate messages/s (0: as fast as the
// socket takes them) and returns how long it took.
func sendUDP(b *testing.B, addr string, n, rate int) time.Duration {
	c, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	const tick = time.Millisecond
	for sent := 0; sent < n; {
		burst := n - sent
		if rate > 0 {
			due := int(time.Since(start)/tick+1) * rate / int(time.Second/tick)
			burst = min(due-sent, n-sent)
			if burst <= 0 {
				time.Sleep(tick / 4)
				continue
			}
		}
		for range burst {
			c.Write(benchLine)
		}
		sent += burst
	}
	return time.Since(start)
}

// rawReceiveRate is the loopback ceiling: a bare socket that only counts
// the datagrams a blasting sender gets through.
func rawReceiveRate(b *testing.B) float64 {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	pc.(*net.UDPConn).SetReadBuffer(16 << 20)
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	took := sendUDP(b, pc.LocalAddr().String(), benchMessages, 0)
	<-done
	pc.Close()
	return float64(got.Load()) / took.Seconds()
}

// udpTrial sends benchMessages at rate to a fresh listener and store, and
// returns how many were stored.
func udpTrial(b *testing.B, rate int) int64 {
	st := storetest.Open(b)
	defer st.Close()
	c := syslog.DefaultConfig()
	c.Bind, c.Logger = "127.0.0.1:0", slog.New(slog.DiscardHandler)
	srv, err := syslog.Listen(c, st.Logs)
	if err != nil {
		b.Fatal(err)
	}
	srv.Serve()
	sendUDP(b, srv.Addr().String(), benchMessages, rate)
	time.Sleep(300 * time.Millisecond) // what the socket buffer still holds
	srv.Close(context.Background())
	return st.Logs.Usage("syslog").Records
}

// processCPU is the CPU time the process has used, in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkSyslogUDP reports the raw loopback receive rate and the highest
// rate, stepping up from 50,000 messages/s, at which all of 1,000,000 UDP
// messages are stored.
func BenchmarkSyslogUDP(b *testing.B) {
	for b.Loop() {
		raw := rawReceiveRate(b)
		best := 0
		for _, rate := range []int{50_000, 75_000, 100_000, 150_000, 200_000} {
			got := udpTrial(b, rate)
			fmt.Printf("syslog UDP: %d msg/s offered, %d of %d stored\n", rate, got, benchMessages)
			if got != benchMessages {
				break
			}
			best = rate
		}
		b.ReportMetric(raw, "raw-recv-msg/s")
		b.ReportMetric(float64(best), "zero-loss-msg/s")
		fmt.Printf("syslog UDP: zero-loss rate %d msg/s; raw loopback receive %.0f msg/s\n", best, raw)
	}
}

// storeOnly is the reference of BenchmarkSyslogTCP: the records the
// listener would make of the same messages, appended straight to a fresh
// store in batches of 500, per CPU-second of the process.
func storeOnly(b *testing.B) float64 {
	st := storetest.Open(b)
	defer st.Close()
	rec := syslog.NewParser().Parse(benchLine, time.Now())
	batch := make([]flowg.Record, 500)
	cpu0 := processCPU()
	for i := 0; i < benchMessages; i += len(batch) {
		for j := range batch {
			batch[j] = flowg.Record{Timestamp: rec.Timestamp.Add(time.Duration(i + j)), Fields: maps.Clone(rec.Fields)}
		}
		if err := st.Logs.Append(context.Background(), "syslog", batch); err != nil {
			b.Fatal(err)
		}
	}
	return benchMessages / (processCPU() - cpu0)
}

// BenchmarkSyslogTCP reports messages/s over one octet-counted TCP
// connection, from the first byte sent to the last message stored, and
// the messages per CPU-second of the process (sender, parser and store)
// beside the same records appended straight to a store in the same run.
func BenchmarkSyslogTCP(b *testing.B) {
	for b.Loop() {
		st := storetest.Open(b)
		c := syslog.DefaultConfig()
		c.Bind, c.Protocol, c.Logger = "127.0.0.1:0", "tcp", slog.New(slog.DiscardHandler)
		srv, err := syslog.Listen(c, st.Logs)
		if err != nil {
			b.Fatal(err)
		}
		srv.Serve()
		conn, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(conn, 64<<10)
		prefix := []byte(strconv.Itoa(len(benchLine)) + " ")
		cpu0 := processCPU()
		start := time.Now()
		for range benchMessages {
			w.Write(prefix)
			w.Write(benchLine)
		}
		w.Flush()
		conn.Close()
		for st.Logs.Usage("syslog").Records < benchMessages {
			time.Sleep(5 * time.Millisecond)
		}
		rate := benchMessages / time.Since(start).Seconds()
		perCPU := benchMessages / (processCPU() - cpu0)
		srv.Close(context.Background())
		st.Close()
		ref := storeOnly(b)
		b.ReportMetric(rate, "tcp-msg/s")
		b.ReportMetric(perCPU, "msg/CPU-s")
		b.ReportMetric(perCPU/ref, "vs-store-only")
		fmt.Printf("syslog TCP: %.0f msg/s over one octet-counted connection, %.0f per CPU-second of the process (sender, parser and store); the same records appended straight to a store: %.0f per CPU-second; %.2f×\n", rate, perCPU, ref, perCPU/ref)
	}
}
