package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/testwait"
)

// fakeLogs is a log store that counts what it is handed.
type fakeLogs struct {
	head uint64
	err  error
}

func (f *fakeLogs) Append(ctx context.Context, stream string, recs []flowg.Record) error {
	if f.err != nil {
		return f.err
	}
	f.head += uint64(len(recs))
	return nil
}

func (f *fakeLogs) Head() uint64 { return f.head }

// fakeCopier answers whether a peer holds the records, and remembers what
// it was asked.
type fakeCopier struct {
	held  bool
	asked []uint64
}

func (f *fakeCopier) WaitCopied(ctx context.Context, head uint64, timeout time.Duration) bool {
	f.asked = append(f.asked, head)
	return f.held
}

func TestCopiedAppender(t *testing.T) {
	recs := []flowg.Record{{Timestamp: time.Now(), Fields: map[string]string{"m": "x"}}}
	for _, c := range []struct {
		name       string
		held       bool
		timeout    time.Duration
		appendErr  error
		wantAsked  bool
		wantSingle float64
	}{
		{"a peer holds them", true, time.Second, nil, true, 0},
		{"no peer holds them in time", false, time.Second, nil, true, 1},
		{"no copy asked for", false, 0, nil, false, 0},
		{"the commit fails", true, time.Second, errors.New("disk"), false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs, copier := &fakeLogs{err: c.appendErr}, &fakeCopier{held: c.held}
			single := prometheus.NewCounter(prometheus.CounterOpts{Name: "single"})
			err := NewCopiedAppender(logs, copier, c.timeout, single).Append(context.Background(), "s", recs)
			if !errors.Is(err, c.appendErr) {
				t.Fatalf("Append = %v, want %v", err, c.appendErr)
			}
			if asked := len(copier.asked) > 0; asked != c.wantAsked {
				t.Fatalf("copier asked: %v, want %v", asked, c.wantAsked)
			}
			if c.wantAsked && copier.asked[0] != logs.head {
				t.Fatalf("asked for head %d, the commit made %d", copier.asked[0], logs.head)
			}
			if got := testutil.ToFloat64(single); got != c.wantSingle {
				t.Fatalf("single-copy answers %v, want %v", got, c.wantSingle)
			}
		})
	}
}

// TestIngestPaths_AcknowledgementPolicy: a lone node answers an HTTP
// ingest and stores a syslog TCP batch only after asking for a second
// copy (none is alive: each counts as a single-copy answer); syslog over
// UDP, which acknowledges nothing, does not wait.
func TestIngestPaths_AcknowledgementPolicy(t *testing.T) {
	for _, proto := range []string{"tcp", "udp"} {
		t.Run(proto, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.CopyTimeout = time.Second
			cfg.Syslog.Protocol = proto
			cfg.Syslog.FlushInterval = 10 * time.Millisecond
			n := New(cfg)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- n.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitReady(t, cfg.MgmtBind)
			single := func() float64 { return testutil.ToFloat64(n.single) }

			resp, err := http.Post("http://"+cfg.HTTPBind+"/api/v1/auth/login", "application/json", strings.NewReader(`{"username":"root","password":"root"}`))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_, tok, _ := strings.Cut(string(b), `"token":"`)
			tok, _, _ = strings.Cut(tok, `"`)
			req, _ := http.NewRequest("POST", "http://"+cfg.HTTPBind+"/api/v1/streams/app/logs/struct", strings.NewReader(`{"records":[{"m":"x"}]}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
				t.Fatalf("ingest: %v %v", resp, err)
			}
			if got := single(); got != 1 {
				t.Fatalf("after an HTTP ingest: %v single-copy answers, want 1", got)
			}
			conn, err := net.Dial(proto, cfg.Syslog.Bind)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(conn, "<13>1 2026-01-02T03:04:05Z h app - - - hello\n")
			conn.Close()
			want := 2.0
			if proto == "udp" {
				want = 1
			}
			testwait.Eventually(t, 5*time.Second, "the syslog message stored", func() bool { return n.st.Logs.Usage("syslog").Records > 0 })
			if proto == "tcp" {
				// TCP acknowledges through the policy once committed.
				testwait.Eventually(t, 5*time.Second, "the TCP message answered", func() bool { return single() >= want })
			}
			if got := single(); got != want {
				t.Fatalf("after a syslog message over %s: %v single-copy answers, want %v", proto, got, want)
			}
		})
	}
}

func waitReady(t *testing.T, mgmt string) {
	t.Helper()
	testwait.Eventually(t, 10*time.Second, "ready", func() bool {
		resp, err := http.Get("http://" + mgmt + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}
