package store

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/flowg-server/flowg-server/filter"
)

// merger reads a stream's records in ID order, in either direction, from
// its rows and its blocks at once: a heap holds the rows' iterator, the
// blocks read so far and, not yet read, the blocks that may hold a record
// before the ones in hand (bounded by their keys: a block holds no record
// before its minID nor after its maxTs, and spans at most maxBlockSpan).
// A block is read only when its bound reaches the top of the heap, so a
// page of the newest records reads one block or two, whatever the stream
// holds.
type merger struct {
	plan
	txn     *badger.Txn
	reverse bool
	want    []string // the columns to decode; all when nil
	eqs     []filter.Equality
	phrases []filter.Phrase

	rows         *badger.Iterator
	lower, upper []byte
	keys         *badger.Iterator // block keys, or block index entries
	klo, khi     []byte
	h            mergeHeap
	nextKey      bool // feed stopped at a key, next, not fed yet
	nextRef      blockRef
	cur          *mergeEntry
}

type mergeEntry struct {
	id   recordID // the next record's, or the bound of a block not read yet
	rows bool
	ref  *blockRef // a block not read yet
	blk  *block
	pos  int // the next row of blk
	// filterCols are blk's columns the filter reads.
	filterCols []*column
	end        int // forward: past the last row in the window; reverse: the first
}

type mergeHeap struct {
	e       []*mergeEntry
	reverse bool
}

func (h mergeHeap) Len() int           { return len(h.e) }
func (h mergeHeap) Less(i, j int) bool { return h.before(h.e[i], h.e[j]) }

// before reports whether a comes before b in the merger's order.
func (h mergeHeap) before(a, b *mergeEntry) bool {
	c := bytes.Compare(a.id[:], b.id[:])
	if c == 0 { // a block's bound before the records it may hold
		return a.ref != nil
	}
	return c < 0 != h.reverse
}
func (h mergeHeap) Swap(i, j int) { h.e[i], h.e[j] = h.e[j], h.e[i] }
func (h *mergeHeap) Push(x any)   { h.e = append(h.e, x.(*mergeEntry)) }
func (h *mergeHeap) Pop() any {
	x := h.e[len(h.e)-1]
	h.e = h.e[:len(h.e)-1]
	return x
}

// newMerger reads p's window, the rows within the live rows' span; want names the fields a caller reads (nil:
// all), f the filter whose terms let it skip blocks.
func newMerger(txn *badger.Txn, p plan, rows rowSpan, reverse bool, want []string, f *filter.Filter) *merger {
	m := &merger{plan: p, txn: txn, reverse: reverse, want: want, h: mergeHeap{reverse: reverse}}
	m.eqs, m.phrases = f.Equalities(), f.Phrases()
	m.rows = txn.NewIterator(badger.IteratorOptions{Prefix: p.prefix, Reverse: reverse, PrefetchValues: false})
	var live bool
	if m.lower, m.upper, live = p.rowBounds(rows); live {
		if reverse {
			m.rows.Seek(m.upper)
		} else {
			m.rows.Seek(m.lower)
		}
		m.pushRows()
	}
	kp := p.blockKeys()
	m.keys = txn.NewIterator(badger.IteratorOptions{Prefix: kp, Reverse: reverse, PrefetchValues: false})
	m.klo, m.khi = p.blockBounds(kp)
	if reverse {
		m.keys.Seek(m.khi)
	} else {
		m.keys.Seek(m.klo)
	}
	return m
}

func (m *merger) close() {
	if m.rows != nil {
		m.rows.Close()
		m.keys.Close()
		m.rows, m.keys = nil, nil
	}
}

// pushRows puts the rows' iterator on the heap if it stands in the window.
func (m *merger) pushRows() {
	for ; m.rows.Valid(); m.rows.Next() {
		key := m.rows.Item().Key()
		if m.reverse && bytes.Compare(key, m.upper) >= 0 {
			continue // the reverse seek landed on upper itself
		}
		if bytes.Compare(key, m.lower) < 0 || bytes.Compare(key, m.upper) >= 0 {
			return
		}
		heap.Push(&m.h, &mergeEntry{id: idOf(key), rows: true})
		return
	}
}

// feed puts on the heap the blocks whose keys say they may hold a record
// that comes before the heap's top.
func (m *merger) feed() {
	m.nextKey = false
	for ; m.keys.Valid(); m.keys.Next() {
		key := m.keys.Item().Key()
		if m.reverse && bytes.Compare(key, m.khi) >= 0 {
			continue
		}
		if bytes.Compare(key, m.klo) < 0 || bytes.Compare(key, m.khi) >= 0 {
			return
		}
		ref := refOf(key)
		if ref.maxTs < m.lo.ts() {
			continue
		}
		var top *mergeEntry
		if len(m.h.e) > 0 {
			top = m.h.e[0]
		}
		if m.reverse {
			if top != nil && ref.min.ts()+maxBlockSpan < top.id.ts() {
				m.nextKey, m.nextRef = true, ref
				return // it, and every block before it, ends before the top
			}
		} else if top != nil && bytes.Compare(ref.min[:], top.id[:]) > 0 {
			m.nextKey, m.nextRef = true, ref
			return
		}
		e := &mergeEntry{ref: &ref}
		if m.reverse {
			bound := recordID{}
			for i := range bound {
				bound[i] = 0xff
			}
			putBE(bound[:8], ref.maxTs)
			e.id = bound
			if bytes.Compare(bound[:], m.hi[:]) >= 0 {
				e.id = m.hi
			}
		} else {
			e.id = maxID(ref.min, m.lo)
		}
		heap.Push(&m.h, e)
	}
}

// next moves to the next record of the window: false when there is none.
func (m *merger) next() (recordID, bool, error) {
	if c := m.cur; c != nil {
		m.cur = nil
		if c.rows {
			m.rows.Next()
			m.pushRows()
		} else if m.step(c) {
			// Most often the same block goes on: no heap to reorder.
			if m.keysDone(c) && (len(m.h.e) == 0 || m.h.before(c, m.h.e[0])) {
				m.cur = c
				return c.id, true, nil
			}
			heap.Push(&m.h, c)
		}
	}
	for {
		m.feed()
		if len(m.h.e) == 0 {
			return recordID{}, false, nil
		}
		top := heap.Pop(&m.h).(*mergeEntry)
		if top.ref == nil {
			m.cur = top
			return top.id, true, nil
		}
		if err := m.load(top); err != nil {
			return recordID{}, false, err
		}
		if top.blk != nil {
			heap.Push(&m.h, top)
		}
	}
}

// keysDone reports whether no block key left to feed may hold a record
// before e.
func (m *merger) keysDone(e *mergeEntry) bool {
	if !m.nextKey {
		return true
	}
	if m.reverse {
		return m.nextRef.min.ts()+maxBlockSpan < e.id.ts()
	}
	return bytes.Compare(m.nextRef.min[:], e.id[:]) > 0
}

// step moves a block's entry to its next row in the window.
func (m *merger) step(e *mergeEntry) bool {
	if m.reverse {
		e.pos--
		if e.pos < e.end {
			return false
		}
	} else {
		e.pos++
		if e.pos >= e.end {
			return false
		}
	}
	e.id = e.blk.id(e.pos)
	return true
}

// load reads the block of e; e.blk stays nil when it has no record in the
// window or its blooms rule out the filter.
func (m *merger) load(e *mergeEntry) error {
	ref := *e.ref
	e.ref = nil
	blk, err := readBlock(m.txn, m.stream, ref, blockRead{want: m.want, eqs: m.eqs, phrases: m.phrases})
	if err != nil || blk == nil {
		return err
	}
	lo, hi := blk.search(m.lo), blk.search(m.hi)
	if lo >= hi {
		return nil
	}
	e.blk = blk
	if m.reverse {
		e.pos, e.end = hi-1, lo
	} else {
		e.pos, e.end = lo, hi
	}
	e.id = blk.id(e.pos)
	return nil
}

// blocksDecoded counts the blocks decoded, for tests and benchmarks.
var blocksDecoded atomic.Int64

// blockRead says how to read a block.
type blockRead struct {
	want    []string // the columns to decode; nil: all
	lazyIDs bool     // see decodeBlock
	// eqs and phrases skip a block whose blooms rule them out.
	eqs     []filter.Equality
	phrases []filter.Phrase
	// item is the block's own entry, when the caller's iterator stands on
	// it: no lookup then.
	item *badger.Item
}

// readBlock reads and decodes the block ref of stream: nil when it is
// gone (retention or a purge since) or its blooms rule out o's terms.
func readBlock(txn *badger.Txn, stream string, ref blockRef, o blockRead) (*block, error) {
	item := o.item
	if item == nil {
		var err error
		item, err = txn.Get(blockKey(stream, ref))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
	}
	var blk *block
	err := item.Value(func(v []byte) error {
		h, err := parseHeader(v)
		if err != nil {
			return err
		}
		if !h.mayHold(o.eqs, o.phrases) {
			return nil
		}
		blk, err = decodeBlock(ref, h, o.want, o.want == nil, o.lazyIDs)
		blocksDecoded.Add(1)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("block %x of stream %q: %w", ref.bytes(), stream, err)
	}
	return blk, nil
}

// record fills fields with the current record (all fields, or those the
// merger was made for): false when it is gone since its index entry was
// read. With alias, the strings of a row point into the database's
// buffers and are valid only until the next call.
func (m *merger) record(fields map[string]string, alias bool) (bool, error) {
	c := m.cur
	if !c.rows {
		c.blk.fields(c.pos, fields)
		return true, nil
	}
	found := false
	err := m.value(m.txn, m.rows, c.id, func(v []byte) error {
		found = true
		return decodeFieldsInto(v, fields, alias, m.want)
	})
	if err != nil {
		return false, fmt.Errorf("record %x of stream %q: %w", c.id, m.stream, err)
	}
	return found, nil
}

// rejects reports whether the current record, in a block, fails f (read
// from its own columns alone, in scratch); a row is decoded whole and
// matched by the caller.
func (m *merger) rejects(f *filter.Filter, names []string, scratch map[string]string) bool {
	c := m.cur
	if c.rows || f == nil {
		return false
	}
	if c.filterCols == nil {
		c.filterCols = c.blk.columns(names)
	}
	c.blk.fill(scratch, c.filterCols, c.pos)
	return !f.Match(scratch)
}

// blockBounds are the first key under prefix (blockKeys) of a block that
// may hold a record of the window, and the first key past them: a block
// spans at most maxBlockSpan, so none named before lo - maxBlockSpan
// reaches lo.
func (p plan) blockBounds(prefix []byte) (lower, upper []byte) {
	var from recordID
	putBE(from[:8], p.lo.ts()-min(p.lo.ts(), maxBlockSpan))
	return append(slices.Clip(prefix), from[:]...), append(slices.Clip(prefix), p.hi[:]...)
}

// blockKeys is the prefix of the block keys the plan reads: the stream's
// blocks, or the blocks holding the indexed value.
func (p plan) blockKeys() []byte {
	if p.viaIndex {
		return blockIndexPrefix(p.stream, p.index.Field, p.index.Value)
	}
	return blockPrefix(p.stream)
}
