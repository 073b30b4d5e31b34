package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sync/errgroup"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/filter"
)

// plan is how a query reads its stream: the key prefix it iterates (the
// stream's data, or an index on one of the filter's equalities) and the
// record IDs it covers, [lo, hi).
type plan struct {
	stream   string
	prefix   []byte
	viaIndex bool
	index    filter.Equality // the equality the index answers
	lo, hi   recordID
}

func (s *LogStore) plan(q flowg.Query) (plan, error) {
	settings, ok := s.cfg.Stream(q.Stream)
	if !ok {
		return plan{}, fmt.Errorf("stream %q: %w", q.Stream, flowg.ErrNotFound)
	}
	p := plan{stream: q.Stream, prefix: dataPrefix(q.Stream)}
	if !q.From.IsZero() {
		putBE(p.lo[:8], tsOf(q.From))
	}
	for i := range p.hi {
		p.hi[i] = 0xff
	}
	if !q.To.IsZero() {
		p.hi = recordID{}
		putBE(p.hi[:8], tsOf(q.To))
	}
	for _, eq := range q.Filter.Equalities() {
		if slices.Contains(settings.IndexedFields, eq.Field) {
			p.prefix, p.viaIndex, p.index = indexPrefix(q.Stream, eq.Field, eq.Value), true, eq
			break
		}
	}
	return p, nil
}

// bounds are the first key in the plan and the first key past it.
func (p plan) bounds() (lower, upper []byte) {
	return append(slices.Clip(p.prefix), p.lo[:]...), append(slices.Clip(p.prefix), p.hi[:]...)
}

// value calls fn with the record the iterator stands on (through the index
// entry when the plan reads an index); not at all when retention deleted
// the record since the index entry was read. The bytes are valid only
// during fn.
func (p plan) value(txn *badger.Txn, it *badger.Iterator, id recordID, fn func([]byte) error) error {
	item := it.Item()
	if p.viaIndex {
		var err error
		item, err = txn.Get(dataKeyID(p.stream, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
	}
	return item.Value(fn)
}

// Query answers q from the log database. A page ends when it holds Limit
// records or when it has read the store's scan budget of entries, so that one
// request never reads a whole large stream: a short page with a cursor means
// "keep going".
func (s *LogStore) Query(ctx context.Context, q flowg.Query) (flowg.Page, error) {
	start := time.Now()
	defer func() { s.m.querySeconds.Observe(time.Since(start).Seconds()) }()
	p, err := s.plan(q)
	if err != nil {
		return flowg.Page{}, err
	}
	if q.Cursor != "" {
		id, err := decodeCursor(q.Cursor)
		if err != nil {
			return flowg.Page{}, err
		}
		if q.Ascending {
			if !increment(&id) {
				return flowg.Page{}, nil
			}
			p.lo = maxID(p.lo, id)
		} else {
			p.hi = minID(p.hi, id)
		}
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var page flowg.Page
	err = s.view(q.Stream, func(txn *badger.Txn, rows rowSpan) error {
		m := newMerger(txn, p, rows, !q.Ascending, nil, q.Filter)
		defer m.close()
		names, scratch := q.Filter.Fields(), map[string]string{}
		for {
			id, ok, err := m.next()
			if err != nil || !ok {
				return err
			}
			if len(page.Records) == q.Limit || page.Scanned == s.maxScan {
				// More may follow: hand out a cursor after the last record read.
				last := id
				if q.Ascending {
					decrement(&last)
				} else {
					increment(&last)
				}
				page.NextCursor = encodeCursor(last)
				return nil
			}
			if page.Scanned%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			page.Scanned++
			if m.rejects(q.Filter, names, scratch) {
				continue
			}
			fields := map[string]string{}
			found, err := m.record(fields, false)
			if err != nil {
				return err
			}
			if found && q.Filter.Match(fields) {
				page.Records = append(page.Records, flowg.Record{Timestamp: timeOf(id.ts()), Fields: fields})
			}
		}
	})
	s.m.scannedRecords.Add(float64(page.Scanned))
	return page, err
}

// Scan calls visit for every record of q's window (From, To) that matches
// q.Filter, in no particular order; Limit, Cursor and Ascending play no
// part. The window is cut into opt.Workers parts read at once, and visit is
// called with the part's number (0 to Workers-1): a caller keeps its state
// per part and joins the parts at the end. The fields given to visit are
// valid only during the call (they point into the database's buffers): a
// caller copies what it keeps; unless opt.AllFields they hold only
// opt.Fields. With opt.Newest, one part reads newest first and stops after
// that many matching records. Scan reads at most opt.MaxScan records and
// index entries in all; past that it fails with flowg.ErrLimit. It returns
// the entries read.
func (s *LogStore) Scan(ctx context.Context, q flowg.Query, opt flowg.ScanOptions, visit func(part int, ts time.Time, fields map[string]string) error) (scanned int64, err error) {
	start := time.Now()
	defer func() { s.m.querySeconds.Observe(time.Since(start).Seconds()) }()
	p, err := s.plan(q)
	if err != nil {
		return 0, err
	}
	r := reader{plan: p, filter: q.Filter, maxScan: opt.MaxScan, total: new(atomic.Int64), newest: opt.Newest}
	// An index that answers the filter whole spares matching its rows; a
	// question that then reads no field is answered from their keys.
	// Blocks hold other values beside the indexed one: their records are
	// always matched.
	r.exact = p.viaIndex && q.Filter.IsEquality()
	if !opt.AllFields {
		r.want = slices.Clip(opt.Fields)
		r.blockWant = append(append([]string{}, opt.Fields...), q.Filter.Fields()...)
		r.out = opt.Fields
		if !r.exact {
			r.want = r.blockWant
		}
		r.keysOnly = len(r.want) == 0
	}
	// Cut the stream's time range inside the window evenly.
	u := s.streamUsage(q.Stream)
	if u.records == 0 {
		return 0, nil
	}
	lo, hi := max(p.lo.ts(), u.oldest), min(p.hi.ts(), u.newest+1)
	if lo >= hi {
		return 0, nil
	}
	workers := max(1, min(opt.Workers, int((hi-lo+999_999)/1_000_000))) // parts of 1 ms at least
	if opt.Newest > 0 {
		workers = 1
	}
	g, ctx := errgroup.WithContext(ctx)
	for w := range workers {
		part := r
		if w > 0 {
			part.lo = recordID{}
			putBE(part.lo[:8], lo+(hi-lo)/uint64(workers)*uint64(w))
		}
		if w < workers-1 {
			part.hi = recordID{}
			putBE(part.hi[:8], lo+(hi-lo)/uint64(workers)*uint64(w+1))
		}
		if opt.VisitBatch != nil {
			part.batch = func(b flowg.Batch) error { return opt.VisitBatch(w, b) }
		}
		g.Go(func() error {
			return s.view(q.Stream, func(txn *badger.Txn, rows rowSpan) error {
				return part.scan(ctx, txn, rows, func(ts time.Time, fields map[string]string) error { return visit(w, ts, fields) })
			})
		})
	}
	err = g.Wait()
	s.m.scannedRecords.Add(float64(r.total.Load()))
	return min(r.total.Load(), opt.MaxScan), err
}

// reader is one part of a Scan.
type reader struct {
	plan
	filter    *filter.Filter
	want      []string                // the fields of rows to decode; nil: all
	blockWant []string                // the columns of blocks to decode; nil: all
	out       []string                // the fields a caller reads
	batch     func(flowg.Batch) error // given blocks' records, when set
	exact     bool                    // the index answers the filter for rows
	keysOnly  bool                    // no field of a row is read: the keys answer
	maxScan   int64
	total     *atomic.Int64 // entries read by every part of the scan
	newest    int           // read newest first, and only this many matches
}

// errEnough ends a scan that has read the records it was asked for.
var errEnough = errors.New("enough records")

// scan reads the records of r, its rows then its blocks (newest first
// through a merger when r.newest), counting entries against the budget
// shared by the parts of one Scan.
func (r reader) scan(ctx context.Context, txn *badger.Txn, rows rowSpan, fn func(time.Time, map[string]string) error) error {
	fields := map[string]string{}
	n := 0
	var err error
	if r.newest > 0 {
		err = r.readNewest(ctx, txn, rows, fields, &n, fn)
	} else if err = r.readRows(ctx, txn, rows, fields, &n, fn); err == nil {
		err = r.readBlocks(ctx, txn, fields, &n, fn)
	}
	if errors.Is(err, errEnough) {
		err = nil
	}
	if err != nil {
		return err
	}
	return r.overBudget(n % 1024)
}

func (r reader) overBudget(read int) error {
	if r.total.Add(int64(read)) > r.maxScan {
		return fmt.Errorf("%w: the question reads more than %d records; narrow from, to or the filter", flowg.ErrLimit, r.maxScan)
	}
	return nil
}

// count counts one entry read in n, checking ctx and the budget every
// 1024.
func (r reader) count(ctx context.Context, n *int) error {
	if *n++; *n%1024 == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		return r.overBudget(1024)
	}
	return nil
}

// readRows reads the live rows of [lo, hi) in key order.
func (r reader) readRows(ctx context.Context, txn *badger.Txn, rows rowSpan, fields map[string]string, n *int, fn func(time.Time, map[string]string) error) error {
	lower, upper, live := r.rowBounds(rows)
	if !live {
		return nil
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: r.prefix, PrefetchValues: false})
	defer it.Close()
	for it.Seek(lower); it.Valid(); it.Next() {
		key := it.Item().Key()
		if bytes.Compare(key, upper) >= 0 {
			break
		}
		if err := r.count(ctx, n); err != nil {
			return err
		}
		id := idOf(key)
		if r.keysOnly {
			if err := fn(timeOf(id.ts()), fields); err != nil {
				return err
			}
			continue
		}
		err := r.value(txn, it, id, func(v []byte) error {
			if err := decodeFieldsInto(v, fields, true, r.want); err != nil {
				return fmt.Errorf("record %x of stream %q: %w", id, r.stream, err)
			}
			if !r.exact && !r.filter.Match(fields) {
				return nil
			}
			return fn(timeOf(id.ts()), fields)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// readBlocks reads the records of [lo, hi) in the blocks that may hold
// some, block after block.
func (r reader) readBlocks(ctx context.Context, txn *badger.Txn, fields map[string]string, n *int, fn func(time.Time, map[string]string) error) error {
	kp := r.blockKeys()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: kp, PrefetchValues: false})
	defer it.Close()
	// Through an index, the blocks are found by a second iterator that
	// moves forward with the index entries: cheaper than a lookup each.
	var blocks blockCursor
	if r.viaIndex {
		blocks = blockCursor{stream: r.stream, it: txn.NewIterator(badger.IteratorOptions{Prefix: blockPrefix(r.stream), PrefetchValues: false})}
		defer blocks.it.Close()
	}
	lower, upper := r.blockBounds(kp)
	eqs, phrases := r.filter.Equalities(), r.filter.Phrases()
	names, memo, used := r.filter.Fields(), make([]int8, 1<<16), []int{}
	clear(fields) // of the rows read before
	for it.Seek(lower); it.Valid(); it.Next() {
		key := it.Item().Key()
		if bytes.Compare(key, upper) >= 0 {
			break
		}
		ref := refOf(key)
		if ref.maxTs < r.lo.ts() {
			continue
		}
		// A question given batches of a block wholly in the window reads
		// its IDs only for their times.
		whole := r.batch != nil && ref.min.ts() >= r.lo.ts() && ref.maxTs < r.hi.ts()
		o := blockRead{want: r.blockWant, lazyIDs: whole, eqs: eqs, phrases: phrases}
		if !r.viaIndex {
			o.item = it.Item()
		} else if o.item = blocks.at(ref); o.item == nil {
			continue // gone since the index entry was read
		}
		blk, err := readBlock(txn, r.stream, ref, o)
		if err != nil {
			return err
		}
		if blk == nil {
			continue
		}
		match := newBlockMatcher(blk, r.filter, names, memo, &used)
		for _, c := range match.cols {
			if c.kind == colTime { // its values are the records' times
				if err := blk.loadTimes(); err != nil {
					return err
				}
			}
		}
		if r.batch != nil {
			if err := r.readBatch(ctx, blk, match, whole); err != nil {
				return err
			}
			continue
		}
		out := blk.columns(r.out)
		if r.blockWant == nil {
			out = blk.allColumns()
		}
		for i, end := blk.search(r.lo), blk.search(r.hi); i < end; i++ {
			if err := r.count(ctx, n); err != nil {
				return err
			}
			if !match.match(i) {
				continue
			}
			if len(out) > 0 {
				blk.fill(fields, out, i)
			}
			if err := fn(timeOf(blk.ts[i]), fields); err != nil {
				return err
			}
		}
	}
	return nil
}

// blockCursor finds blocks in key order with one iterator.
type blockCursor struct {
	stream string
	it     *badger.Iterator
	seeked bool
}

// at returns the item of the block ref, nil when there is none; refs
// come in increasing order.
func (c *blockCursor) at(ref blockRef) *badger.Item {
	key := blockKey(c.stream, ref)
	// A few steps forward, where the index names most blocks; a seek
	// past those.
	for step := 0; c.seeked && c.it.Valid() && step < 8; step++ {
		switch cmp := bytes.Compare(c.it.Item().Key(), key); {
		case cmp == 0:
			return c.it.Item()
		case cmp > 0:
			return nil
		}
		c.it.Next()
	}
	c.seeked = true
	c.it.Seek(key)
	if c.it.Valid() && bytes.Equal(c.it.Item().Key(), key) {
		return c.it.Item()
	}
	return nil
}

// readBatch gives the batch visitor the records of blk in the window
// that match.
func (r reader) readBatch(ctx context.Context, blk *block, match *blockMatcher, whole bool) error {
	lo, hi := 0, blk.len()
	if !whole {
		lo, hi = blk.search(r.lo), blk.search(r.hi)
	}
	if lo >= hi {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.overBudget(hi - lo); err != nil {
		return err
	}
	b := &blockBatch{blk: blk, lo: lo, hi: hi}
	if r.filter != nil && !match.all() {
		if b.sel = match.selectRows(lo, hi, make([]int32, 0, hi-lo)); len(b.sel) == 0 {
			return nil
		}
	}
	if err := r.batch(b); err != nil {
		return err
	}
	return b.err
}

// readNewest reads the window newest first, rows and blocks merged, until
// r.newest records matched.
func (r reader) readNewest(ctx context.Context, txn *badger.Txn, rows rowSpan, fields map[string]string, n *int, fn func(time.Time, map[string]string) error) error {
	m := newMerger(txn, r.plan, rows, true, r.blockWant, r.filter)
	defer m.close()
	matched := 0
	for {
		id, ok, err := m.next()
		if err != nil || !ok {
			return err
		}
		if err := r.count(ctx, n); err != nil {
			return err
		}
		found, err := m.record(fields, true)
		if err != nil {
			return err
		}
		if !found || !r.filter.Match(fields) {
			continue
		}
		if err := fn(timeOf(id.ts()), fields); err != nil {
			return err
		}
		if matched++; matched == r.newest {
			return errEnough
		}
	}
}
