package store

import (
	"github.com/dgraph-io/badger/v4"
)

// Rows and their tombstones: once sealed, a row is deleted, and Badger
// keeps its tombstone until a compaction reaches the last level; an
// iterator walks every tombstone in its range. So readers bound the rows
// they iterate by the time span of the rows still live in the stream,
// which the writer keeps in chunks of rows (rowChunk): extended before
// each commit of rows, narrowed after each seal. A reader opens its
// transaction and reads the span under spanMu, which a seal holds from its
// commit to the new spans, so the two always agree.

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

// rowChunk is up to rowChunkLen rows of one origin in one stream, taken
// one after the other: the span of a stream's live rows is the union of
// its chunks', and a seal drops the chunks it covered whole (a chunk it
// cut stays whole: the span is wider than need be, never narrower).
type rowChunk struct {
	last uint64 // the last sequence number in it
	span rowSpan
	n    int
}

const rowChunkLen = 1024

// liveRow is a row about to be committed.
type liveRow struct {
	stream string
	origin uint32
	seq    uint64
	ts     uint64
}

// addRows records rows about to be committed, before their commit.
func (s *LogStore) addRows(rows []liveRow) {
	s.spanMu.Lock()
	defer s.spanMu.Unlock()
	for _, r := range rows {
		s.addRow(r)
	}
}

func (s *LogStore) addRow(r liveRow) {
	byOrigin := s.chunks[r.stream]
	if byOrigin == nil {
		byOrigin = map[uint32][]rowChunk{}
		s.chunks[r.stream] = byOrigin
	}
	cs := byOrigin[r.origin]
	if len(cs) == 0 || cs[len(cs)-1].n == rowChunkLen {
		cs = append(cs, rowChunk{})
	}
	c := &cs[len(cs)-1]
	c.last, c.n = r.seq, c.n+1
	c.span.add(r.ts)
	byOrigin[r.origin] = cs
	sp := s.spans[r.stream]
	sp.add(r.ts)
	s.spans[r.stream] = sp
}

// sealedUpTo drops the chunks of origin up to seq, and narrows the spans
// of the streams they were in; under spanMu.
func (s *LogStore) sealedUpTo(origin uint32, seq uint64) {
	for stream, byOrigin := range s.chunks {
		cs := byOrigin[origin]
		k := 0
		for k < len(cs) && cs[k].last <= seq {
			k++
		}
		if k == 0 {
			continue
		}
		byOrigin[origin] = cs[k:]
		var sp rowSpan
		for o, cs := range byOrigin {
			if len(cs) == 0 {
				delete(byOrigin, o)
			}
			for _, c := range cs {
				sp.add(c.span.lo)
				sp.add(c.span.hi)
			}
		}
		if sp.any {
			s.spans[stream] = sp
		} else {
			delete(s.spans, stream)
			delete(s.chunks, stream)
		}
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

// loadRows records the rows not sealed yet, from their origin entries.
func (s *LogStore) loadRows() error {
	s.originsMu.RLock()
	from := map[uint32]uint64{}
	for o, n := range s.origins {
		if s.heads[o] > s.sealed[o] {
			from[n] = s.sealed[o] + 1
		}
	}
	s.originsMu.RUnlock()
	return s.db.View(func(txn *badger.Txn) error {
		for n, seq := range from {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: originKey(n, 0)[:5], PrefetchValues: true, PrefetchSize: 256})
			for it.Seek(originKey(n, seq)); it.Valid(); it.Next() {
				if err := it.Item().Value(func(v []byte) error {
					stream, ts, err := parseOriginValue(v)
					if err == nil {
						s.addRow(liveRow{stream, n, beUint64(it.Item().Key()[5:]), ts})
					}
					return err
				}); err != nil {
					it.Close()
					return err
				}
			}
			it.Close()
		}
		return nil
	})
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
