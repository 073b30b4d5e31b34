package discovery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	flowg "github.com/flowg-server/flowg-server"
)

// fakeCluster is a working in-memory membership: Join succeeds for peers
// marked up and makes them members.
type fakeCluster struct {
	mu      sync.Mutex
	self    string
	up      map[string]bool
	members map[string]bool
	calls   [][]flowg.Peer
}

func (f *fakeCluster) IsSelf(p flowg.Peer) bool { return p.NodeID == f.self }

func (f *fakeCluster) IsMember(p flowg.Peer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[p.NodeID]
}

func (f *fakeCluster) Join(_ context.Context, peers []flowg.Peer) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, peers)
	n := 0
	for _, p := range peers {
		if f.up[p.NodeID] {
			f.members[p.NodeID] = true
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("connection refused")
	}
	return n, nil
}

type failing struct{}

func (failing) Name() string                                { return "broken" }
func (failing) Peers(context.Context) ([]flowg.Peer, error) { return nil, errors.New("unreachable") }
func (f *fakeCluster) set(id string, up bool)               { f.mu.Lock(); f.up[id] = up; f.mu.Unlock() }
func (f *fakeCluster) joined(id string) bool                { return f.IsMember(flowg.Peer{NodeID: id}) }
func (f *fakeCluster) callCount() int                       { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) }

// TestLoop_RetriesSkipsSelfAndMembersDedups runs the loop on synctest's
// virtual clock: its backoffs and interval pass at once, and
// synctest.Wait returns when the loop is blocked on its next timer.
func TestLoop_RetriesSkipsSelfAndMembersDedups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCluster{self: "me", up: map[string]bool{}, members: map[string]bool{}}
		peer := flowg.Peer{NodeID: "a", Endpoint: "http://a:9113"}
		sources := []Source{
			Static{Peer: peer}, Static{Peer: peer}, // the same peer from two sources
			Static{Peer: flowg.Peer{NodeID: "me", Endpoint: "http://me:9113"}},
			failing{},
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go (&Loop{Sources: sources, Cluster: c, Interval: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)}).Run(ctx)

		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if c.callCount() < 3 {
			t.Fatalf("the loop tried %d times in 100 ms while the peer was down (backoff 10 ms to 40 ms)", c.callCount())
		}
		c.set("a", true)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if !c.joined("a") {
			t.Fatal("the loop did not join the peer once it was up")
		}
		n := c.callCount()
		time.Sleep(time.Second)
		synctest.Wait()
		if c.callCount() != n {
			t.Fatal("the loop joins again a peer that is already a member")
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, call := range c.calls {
			if len(call) != 1 || call[0] != peer {
				t.Fatalf("join called with %v: want the one peer, deduplicated, never this node", call)
			}
		}
	})
}

// flaky answers with its peer once, then fails; it notifies on demand.
type flaky struct {
	mu      sync.Mutex
	peer    flowg.Peer
	asked   int
	changed chan struct{}
}

func (f *flaky) Name() string { return "flaky" }

func (f *flaky) Peers(context.Context) ([]flowg.Peer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if f.asked == 1 {
		return []flowg.Peer{f.peer}, nil
	}
	return nil, errors.New("gone")
}

func (f *flaky) Changed() <-chan struct{} { return f.changed }

// TestLoop_LastGoodAnswerAndNotifier: a source that fails keeps counting
// with its last good answer, and a Notifier wakes the loop long before its
// interval.
func TestLoop_LastGoodAnswerAndNotifier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCluster{self: "me", up: map[string]bool{}, members: map[string]bool{}}
		src := &flaky{peer: flowg.Peer{NodeID: "a", Endpoint: "http://a:9113"}, changed: make(chan struct{}, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Backoffs and interval of an hour: only the notifier can start
		// another round within the minute the test waits.
		go (&Loop{Sources: []Source{src}, Cluster: c, Interval: time.Hour, MinBackoff: time.Hour, MaxBackoff: time.Hour,
			Logger: slog.New(slog.DiscardHandler)}).Run(ctx)
		synctest.Wait()
		if c.callCount() != 1 {
			t.Fatalf("%d rounds at start, want 1", c.callCount())
		}
		c.set("a", true)
		src.changed <- struct{}{}
		time.Sleep(time.Minute)
		synctest.Wait()
		if !c.joined("a") {
			t.Fatal("the notifier did not wake the loop, or the failing source's last answer was dropped")
		}
	})
}
