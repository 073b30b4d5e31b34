package replica

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	flowg "github.com/flowg-server/flowg-server"
)

// downPeer is a cluster whose one peer never answers; it keeps the
// (virtual) time of each try.
type downPeer struct {
	mu    sync.Mutex
	tries []time.Time
}

func (*downPeer) NodeID() string      { return "n0" }
func (*downPeer) Nodes() []flowg.Node { return nil }
func (d *downPeer) times() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.tries...)
}
func (d *downPeer) Request(context.Context, flowg.Peer, string, string, http.Header, []byte) (*http.Response, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tries = append(d.tries, time.Now())
	return nil, errors.New("connection refused")
}

// noLogs is a log store with nothing in it; only what a failing pull
// reads is answered.
type noLogs struct{ Logs }

func (noLogs) Origin() string           { return "o0" }
func (noLogs) Heads() map[string]uint64 { return map[string]uint64{} }

// noMeta is a settings store nothing changes in.
type noMeta struct{ Meta }

func (noMeta) OnMetaChange(func([]flowg.MetaEntry)) {}

// countWarnings counts the warnings logged.
type countWarnings struct {
	slog.Handler
	mu sync.Mutex
	n  int
}

func (c *countWarnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (c *countWarnings) Handle(context.Context, slog.Record) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return nil
}
func (c *countWarnings) WithAttrs([]slog.Attr) slog.Handler { return c }

// TestPullLoop_BacksOffWithJitter runs one peer's pull loop against a peer
// that never answers, on synctest's virtual clock: the tries are spaced
// from 200 ms growing to the 5 s cap, with jitter (so nodes that lost
// the same peer do not retry in step), and the failure is logged once,
// not per try.
func TestPullLoop_BacksOffWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		peer := &downPeer{}
		warn := &countWarnings{}
		cfg := DefaultConfig()
		cfg.Meta, cfg.Logs, cfg.Cluster, cfg.Logger = noMeta{}, noLogs{}, peer, slog.New(warn)
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.pullLoop(ctx, flowg.Node{ID: "n1", Endpoint: "http://n1:9113"}); close(done) }()
		time.Sleep(2 * time.Minute)
		cancel()
		<-done

		tries := peer.times()
		if len(tries) < 25 || len(tries) > 600 {
			t.Fatalf("%d tries in 2 minutes; want the pace of a 200 ms to 5 s backoff", len(tries))
		}
		distinct := map[time.Duration]bool{}
		for i := 1; i < len(tries); i++ {
			gap := tries[i].Sub(tries[i-1])
			if i <= 6 { // growing, before the cap
				distinct[gap] = true
			}
			if gap < 200*time.Millisecond || gap > 5*time.Second {
				t.Fatalf("try %d came %s after the one before; want 200ms to 5s", i, gap)
			}
		}
		if len(distinct) < 5 {
			t.Errorf("%d distinct gaps among the first 6: the backoff has no jitter", len(distinct))
		}
		if late := tries[len(tries)-1].Sub(tries[len(tries)-2]); late < time.Second {
			t.Errorf("the last gap is %s: the backoff does not grow", late)
		}
		if warn.n != 1 {
			t.Errorf("%d warnings logged for one failing peer, want 1", warn.n)
		}
	})
}
