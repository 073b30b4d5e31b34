package store

import flowg "github.com/flowg-server/flowg-server"

// tailBuffer is the number of committed batches a subscriber may fall behind
// before it is dropped.
const tailBuffer = 256

// Subscription is the store's flowg.Subscription.
type Subscription struct {
	c      chan []flowg.Record
	s      *LogStore
	stream string
	lagged bool // set under s.subsMu before c is closed
}

// Subscribe starts a subscription to stream.
func (s *LogStore) Subscribe(stream string) flowg.Subscription {
	sub := &Subscription{c: make(chan []flowg.Record, tailBuffer), s: s, stream: stream}
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if s.closed {
		close(sub.c)
		return sub
	}
	set := s.subs[stream]
	if set == nil {
		set = map[*Subscription]struct{}{}
		s.subs[stream] = set
	}
	set[sub] = struct{}{}
	return sub
}

// Records yields the committed batches.
func (sub *Subscription) Records() <-chan []flowg.Record { return sub.c }

// Lagged reports whether the subscription ended because its reader fell
// behind. Call it after C is closed.
func (sub *Subscription) Lagged() bool {
	sub.s.subsMu.Lock()
	defer sub.s.subsMu.Unlock()
	return sub.lagged
}

// Close ends the subscription. It is safe to call more than once.
func (sub *Subscription) Close() {
	sub.s.subsMu.Lock()
	defer sub.s.subsMu.Unlock()
	sub.s.remove(sub)
}

// remove takes sub out and closes its channel; s.subsMu must be held.
func (s *LogStore) remove(sub *Subscription) {
	set := s.subs[sub.stream]
	if _, ok := set[sub]; !ok {
		return
	}
	delete(set, sub)
	if len(set) == 0 {
		delete(s.subs, sub.stream)
	}
	close(sub.c)
}

// publish hands a committed batch to the subscribers of stream without ever
// blocking the writer: a subscriber whose buffer is full is dropped.
func (s *LogStore) publish(stream string, recs []flowg.Record) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for sub := range s.subs[stream] {
		select {
		case sub.c <- recs:
		default:
			sub.lagged = true
			s.remove(sub)
		}
	}
}
