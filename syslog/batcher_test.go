package syslog

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	flowg "github.com/flowg-server/flowg-server"
)

// batchSink keeps the size of each batch it is handed.
type batchSink struct {
	mu    sync.Mutex
	sizes []int
}

func (s *batchSink) Append(_ context.Context, _ string, recs []flowg.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sizes = append(s.sizes, len(recs))
	return nil
}

func (s *batchSink) batches() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

// TestBatcher_FlushesWhenFullOrOnTheTick runs the batcher on synctest's
// virtual clock: a batch goes to the store when it is full (at once),
// on the flush tick (not before), and when the queue closes.
func TestBatcher_FlushesWhenFullOrOnTheTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.BatchSize, cfg.FlushInterval = 3, 100*time.Millisecond
		sink := &batchSink{}
		s := &Server{cfg: cfg, sink: sink, log: slog.New(slog.DiscardHandler), m: newMetrics(nil),
			queue: make(chan flowg.Record, 16), stop: context.Background()}
		done := make(chan struct{})
		go func() { s.batcher(); close(done) }()
		rec := flowg.Record{Timestamp: time.Unix(1, 0), Fields: map[string]string{"message": "m"}}
		want := func(what string, sizes ...int) {
			t.Helper()
			synctest.Wait()
			if got := sink.batches(); len(got) != len(sizes) || len(got) > 0 && got[len(got)-1] != sizes[len(sizes)-1] {
				t.Fatalf("%s: batches %v, want %v", what, got, sizes)
			}
		}

		s.queue <- rec
		time.Sleep(99 * time.Millisecond)
		want("one record before the tick")
		time.Sleep(time.Millisecond)
		want("one record on the tick", 1)
		for range 3 {
			s.queue <- rec
		}
		want("a full batch, at once", 1, 3)
		s.queue <- rec
		close(s.queue)
		<-done
		want("what is left when the queue closes", 1, 3, 1)
	})
}
