package store

import (
	"github.com/dgraph-io/badger/v4"
)

// Rows and their tombstones: once sealed, a row is deleted, and Badger
// keeps its tombstone until a compaction reaches the last level; an
// iterator walks every tombstone in its range. So readers bound the rows
// they iterate by the time span of the rows still live in the stream,
// which the writer keeps: extended before each commit of rows, recomputed
// from the origin entries of the rows left (few: at most a few blocks'
// worth) after each seal. A reader opens its transaction and reads the
// span under spanMu, which a seal holds from its commit to the new spans,
// so the two always agree.

// rowSpan bounds the timestamps of a stream's live rows.
type rowSpan struct {
	lo, hi uint64
	any    bool
}

func (r *rowSpan) add(ts uint64) {
	if !r.any || ts < r.lo {
		r.lo = ts
	}
	if !r.any || ts > r.hi {
		r.hi = ts
	}
	r.any = true
}

// extendSpans widens the spans of the streams in add, before a commit.
func (s *LogStore) extendSpans(add map[string]rowSpan) {
	s.spanMu.Lock()
	defer s.spanMu.Unlock()
	for stream, a := range add {
		r := s.spans[stream]
		r.add(a.lo)
		r.add(a.hi)
		s.spans[stream] = r
	}
}

// view runs fn in a read transaction with the span of stream's rows as
// that transaction sees them.
func (s *LogStore) view(stream string, fn func(txn *badger.Txn, rows rowSpan) error) error {
	s.spanMu.RLock()
	txn := s.db.NewTransaction(false)
	rows := s.spans[stream]
	s.spanMu.RUnlock()
	defer txn.Discard()
	return fn(txn, rows)
}

// liveSpans computes the spans of every stream from the origin entries of
// the rows not sealed yet.
func (s *LogStore) liveSpans() (map[string]rowSpan, error) {
	spans := map[string]rowSpan{}
	s.originsMu.RLock()
	from := map[uint32]uint64{}
	for o, n := range s.origins {
		if s.heads[o] > s.sealed[o] {
			from[n] = s.sealed[o] + 1
		}
	}
	s.originsMu.RUnlock()
	err := s.db.View(func(txn *badger.Txn) error {
		for n, seq := range from {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: originKey(n, 0)[:5], PrefetchValues: true, PrefetchSize: 256})
			for it.Seek(originKey(n, seq)); it.Valid(); it.Next() {
				if err := it.Item().Value(func(v []byte) error {
					stream, ts, err := parseOriginValue(v)
					if err != nil {
						return err
					}
					r := spans[stream]
					r.add(ts)
					spans[stream] = r
					return nil
				}); err != nil {
					it.Close()
					return err
				}
			}
			it.Close()
		}
		return nil
	})
	return spans, err
}

// rowBounds are the keys of p's rows within the live span: none when no
// live row can be in p's window.
func (p plan) rowBounds(rows rowSpan) (lower, upper []byte, ok bool) {
	if !rows.any {
		return nil, nil, false
	}
	var lo, hi recordID
	putBE(lo[:8], rows.lo)
	putBE(hi[:8], rows.hi+1)
	lo, hi = maxID(p.lo, lo), minID(p.hi, hi)
	if compareIDs(lo, hi) >= 0 {
		return nil, nil, false
	}
	q := p
	q.lo, q.hi = lo, hi
	lower, upper = q.bounds()
	return lower, upper, true
}
