package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// groupBytes bounds the bytes that the writer groups into one transaction,
// far below Badger's transaction limit for the log database.
const groupBytes = 4 << 20

// LogStore keeps the records of every stream in the log database.
type LogStore struct {
	db   *badger.DB
	cfg  *ConfigStore
	log  *slog.Logger
	m    *metrics
	disk *diskGuard

	maxScan int

	appendCh chan *appendReq
	opCh     chan *opReq
	quit     chan struct{}
	stopped  chan struct{}

	closeMu sync.RWMutex // held for reading around sends to the writer
	closed  bool

	seq uint64 // the last sequence number used; owned by the writer

	// Records are identified in the cluster by their origin and the
	// origin's sequence number. The origin is this database's, not only the
	// node's: a node that comes back with the same node ID and an empty
	// disk must not give out sequence numbers its peers already hold of its
	// former self (they would take the new records for ones they have). So
	// a new database makes its origin "<node ID>@<random>" (see load).
	// Origins are numbered locally (4 bytes in keys instead of the name).
	nodeID    string
	origin    string
	self      uint32
	originsMu sync.RWMutex
	origins   map[string]uint32
	names     map[uint32]string
	heads     map[string]uint64 // per origin, the last sequence held; this node's is seq

	changedMu sync.Mutex
	changed   chan struct{} // closed and replaced at every commit

	usageMu sync.RWMutex
	usage   map[string]usage

	subsMu sync.Mutex
	subs   map[string]map[*Subscription]struct{}
}

type appendReq struct {
	stream string
	recs   []flowg.Record
	vals   [][]byte
	size   int
	done   chan error
}

type opReq struct {
	fn   func() error
	done chan error
}

func openLogs(dir string, syncWrites bool, cfg *ConfigStore, m *metrics, log *slog.Logger, maxScan int, nodeID string, budget int64) (*LogStore, error) {
	var reserve uint64
	db, err := openBadger(dir, syncWrites, log, func(o *badger.Options) {
		logDBOptions(o, budget)
		_, total, _ := statfs(dir)
		reserve = fitVolume(&o.MemTableSize, &o.ValueLogFileSize, total)
	})
	if err != nil {
		return nil, err
	}
	s := &LogStore{
		db: db, cfg: cfg, log: log, m: m, maxScan: maxScan,
		appendCh: make(chan *appendReq, 1024),
		opCh:     make(chan *opReq),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
		usage:    map[string]usage{},
		subs:     map[string]map[*Subscription]struct{}{},
		nodeID:   nodeID,
		origins:  map[string]uint32{},
		names:    map[uint32]string{},
		heads:    map[string]uint64{},
		changed:  make(chan struct{}),
		disk:     newDiskGuard("log", dir, reserve, log),
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	go s.writer()
	return s, nil
}

// load reads the sequence number, the origins and their marks, and the
// usage of every stream.
func (s *LogStore) load() error {
	err := s.db.Update(func(txn *badger.Txn) error {
		_, ferr := txn.Get([]byte(keyFormat))
		_, serr := txn.Get([]byte(keySeq))
		switch {
		case errors.Is(ferr, badger.ErrKeyNotFound) && serr == nil:
			return errors.New("the log database was written by an older version with another key layout; move it away to start afresh")
		case errors.Is(ferr, badger.ErrKeyNotFound):
			if err := txn.Set([]byte(keyFormat), []byte(logFormat)); err != nil {
				return err
			}
		case ferr != nil:
			return ferr
		}
		item, err := txn.Get([]byte(keySelf))
		switch {
		case err == nil:
			v, err := item.ValueCopy(nil)
			s.origin = string(v)
			return err
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		case serr == nil:
			// Written before databases had an origin of their own: its
			// records already carry the node ID.
			s.origin = s.nodeID
		default:
			s.origin = s.nodeID + "@" + strings.ToLower(rand.Text()[:8])
		}
		return txn.Set([]byte(keySelf), []byte(s.origin))
	})
	if err != nil {
		return err
	}
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("m/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := string(it.Item().Key())
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if name, ok := strings.CutPrefix(k, prefixDict); ok && len(v) == 4 {
				n := binary.BigEndian.Uint32(v)
				s.origins[name], s.names[n] = n, name
			}
			if name, ok := strings.CutPrefix(k, prefixMark); ok && len(v) == 8 {
				s.heads[name] = beUint64(v)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("cannot read the origins: %w", err)
	}
	self, err := s.originNumber(s.origin)
	if err != nil {
		return err
	}
	s.self = self
	return s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keySeq))
		switch {
		case err == nil:
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return errCorrupt
				}
				s.seq = beUint64(v)
				s.heads[s.origin] = s.seq
				return nil
			}); err != nil {
				return fmt.Errorf("cannot read the write sequence: %w", err)
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("cannot read the write sequence: %w", err)
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixUsage}, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			stream := string(it.Item().Key()[1:])
			if err := it.Item().Value(func(v []byte) error {
				u, err := decodeUsage(v)
				s.usage[stream] = u
				return err
			}); err != nil {
				return fmt.Errorf("cannot read the usage of stream %q: %w", stream, err)
			}
		}
		return nil
	})
}

// Append stores records in stream, creating the stream with default settings
// if it does not exist. It returns once the records are committed; on error
// none of them is stored.
func (s *LogStore) Append(ctx context.Context, stream string, recs []flowg.Record) error {
	if err := flowg.ValidateStreamName(stream); err != nil {
		return fmt.Errorf("%w: %v", flowg.ErrInvalid, err)
	}
	if len(recs) == 0 {
		return nil
	}
	if len(recs) > flowg.MaxBatchRecords {
		return fmt.Errorf("%w: %d records, more than the limit of %d", flowg.ErrTooLarge, len(recs), flowg.MaxBatchRecords)
	}
	req := &appendReq{stream: stream, recs: recs, vals: make([][]byte, len(recs)), done: make(chan error, 1)}
	for i, r := range recs {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("%w: record %d: %v", flowg.ErrInvalid, i, err)
		}
		req.vals[i] = encodeFields(r.Fields)
		req.size += len(req.vals[i])
	}
	if err := s.disk.check(); err != nil {
		return err
	}
	if _, err := s.cfg.ensureStream(stream); err != nil {
		return err
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return flowg.ErrClosed
	}
	select {
	case s.appendCh <- req:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	// Once queued, the request is committed or failed by the writer; wait for
	// the outcome even if ctx ends, so that the answer is never a guess.
	return <-req.done
}

// do runs fn on the writer goroutine, between two commits.
func (s *LogStore) do(ctx context.Context, fn func() error) error {
	req := &opReq{fn: fn, done: make(chan error, 1)}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return flowg.ErrClosed
	}
	select {
	case s.opCh <- req:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	return <-req.done
}

// writer is the only goroutine that writes records, usage and the sequence.
func (s *LogStore) writer() {
	defer close(s.stopped)
	batch := make([]*appendReq, 0, 64)
	for {
		select {
		case r := <-s.appendCh:
			batch = s.gather(append(batch[:0], r))
			s.commit(batch)
		case op := <-s.opCh:
			op.done <- op.fn()
		case <-s.quit:
			for {
				select {
				case r := <-s.appendCh:
					batch = s.gather(append(batch[:0], r))
					s.commit(batch)
				default:
					return
				}
			}
		}
	}
}

// gather adds the requests already waiting to batch, up to groupBytes.
func (s *LogStore) gather(batch []*appendReq) []*appendReq {
	size := batch[0].size
	for size < groupBytes {
		select {
		case r := <-s.appendCh:
			batch = append(batch, r)
			size += r.size
		default:
			return batch
		}
	}
	return batch
}

// commit writes batch in one transaction and answers every request in it.
func (s *LogStore) commit(batch []*appendReq) {
	start := time.Now()
	err := s.disk.check()
	if err == nil {
		err = s.commitTxn(batch)
	}
	if errors.Is(err, badger.ErrTxnTooBig) && len(batch) > 1 {
		for _, r := range batch {
			s.commit([]*appendReq{r})
		}
		return
	}
	if errors.Is(err, badger.ErrTxnTooBig) {
		err = s.commitParts(batch[0])
	}
	n := 0
	for _, r := range batch {
		r.done <- err
		n += len(r.recs)
	}
	if err == nil {
		s.m.commitSeconds.Observe(time.Since(start).Seconds())
		s.m.commitRequests.Observe(float64(len(batch)))
		s.m.storedRecords.Add(float64(n))
		for _, r := range batch {
			s.publish(r.stream, r.recs)
		}
	}
}

// commitParts commits one request too large for one Badger transaction
// (15% of a memtable, which the memory budget sizes) in several, in a row,
// halving it until each part fits; the request is answered once the last
// part is committed. Nothing else is written between the parts, the disk
// was checked before the first, and a record too large for a transaction
// by itself is refused (flowg.ErrTooLarge). A crash between two parts
// keeps the first ones: the request was not acknowledged, so its retry may
// store them twice.
func (s *LogStore) commitParts(r *appendReq) error {
	err := s.commitTxn([]*appendReq{r})
	if !errors.Is(err, badger.ErrTxnTooBig) {
		return err
	}
	if len(r.recs) == 1 {
		return fmt.Errorf("%w: one record is larger than a transaction may be (raise --memory-limit)", flowg.ErrTooLarge)
	}
	half := len(r.recs) / 2
	for _, part := range []*appendReq{
		{stream: r.stream, recs: r.recs[:half], vals: r.vals[:half]},
		{stream: r.stream, recs: r.recs[half:], vals: r.vals[half:]},
	} {
		if err := s.commitParts(part); err != nil {
			return err
		}
	}
	return nil
}

func (s *LogStore) commitTxn(batch []*appendReq) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	seq := s.seq
	touched := map[string]usage{}
	for _, r := range batch {
		settings, _ := s.cfg.Stream(r.stream)
		u, ok := touched[r.stream]
		if !ok {
			u = s.streamUsage(r.stream)
		}
		for i, rec := range r.recs {
			seq++
			ts := tsOf(rec.Timestamp)
			size, err := putRecord(txn, r.stream, ts, s.self, seq, r.vals[i], settings.IndexedFields, rec.Fields)
			if err != nil {
				return err
			}
			u.add(ts, size)
		}
		touched[r.stream] = u
	}
	for stream, u := range touched {
		if err := txn.Set(usageKey(stream), u.encode()); err != nil {
			return err
		}
	}
	if err := txn.Set([]byte(keySeq), beBytes(seq)); err != nil {
		return err
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	s.seq = seq
	s.setHead(s.origin, seq)
	s.usageMu.Lock()
	for stream, u := range touched {
		s.usage[stream] = u
	}
	s.usageMu.Unlock()
	return nil
}

// putRecord writes one record in txn: its data key, its origin key and an
// index entry for each indexed field it has; it returns the bytes the
// record counts for in its stream's usage. Local ingest and replicated
// batches both write records through it, so the two never differ.
func putRecord(txn *badger.Txn, stream string, ts uint64, origin uint32, seq uint64, value []byte, indexed []string, fields map[string]string) (int64, error) {
	dk := dataKey(stream, ts, origin, seq)
	if err := txn.Set(dk, value); err != nil {
		return 0, err
	}
	if err := txn.Set(originKey(origin, seq), originValue(stream, ts)); err != nil {
		return 0, err
	}
	for _, f := range indexed {
		if v, ok := fields[f]; ok {
			if err := txn.Set(append(indexPrefix(stream, f, v), dk[len(dk)-idLen:]...), nil); err != nil {
				return 0, err
			}
		}
	}
	return int64(len(dk) + len(value)), nil
}

func (u *usage) add(ts uint64, size int64) {
	if u.records == 0 || ts < u.oldest {
		u.oldest = ts
	}
	if u.records == 0 || ts > u.newest {
		u.newest = ts
	}
	u.records++
	u.bytes += size
}

func (s *LogStore) streamUsage(stream string) usage {
	s.usageMu.RLock()
	defer s.usageMu.RUnlock()
	return s.usage[stream]
}

// Usage returns what a stream holds.
func (s *LogStore) Usage(stream string) flowg.StreamUsage {
	u := s.streamUsage(stream)
	out := flowg.StreamUsage{Records: u.records, Bytes: u.bytes}
	if u.records > 0 {
		out.Oldest, out.Newest = timeOf(u.oldest), timeOf(u.newest)
	}
	return out
}

// Query answers q from the log database. A page ends when it holds Limit
// records or when it has read the store's scan budget of entries, so that one
// request never reads a whole large stream: a short page with a cursor means
// "keep going".
func (s *LogStore) Query(ctx context.Context, q flowg.Query) (flowg.Page, error) {
	start := time.Now()
	defer func() { s.m.querySeconds.Observe(time.Since(start).Seconds()) }()
	if _, ok := s.cfg.Stream(q.Stream); !ok {
		return flowg.Page{}, fmt.Errorf("stream %q: %w", q.Stream, flowg.ErrNotFound)
	}
	var lo, hi recordID // [lo, hi)
	if !q.From.IsZero() {
		putBE(lo[:8], tsOf(q.From))
	}
	for i := range hi {
		hi[i] = 0xff
	}
	if !q.To.IsZero() {
		hi = recordID{}
		putBE(hi[:8], tsOf(q.To))
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
			lo = maxID(lo, id)
		} else {
			hi = minID(hi, id)
		}
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	settings, _ := s.cfg.Stream(q.Stream)
	prefix, viaIndex := dataPrefix(q.Stream), false
	for _, eq := range q.Filter.Equalities() {
		if slices.Contains(settings.IndexedFields, eq.Field) {
			prefix, viaIndex = indexPrefix(q.Stream, eq.Field, eq.Value), true
			break
		}
	}
	var page flowg.Page
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: !q.Ascending, PrefetchValues: false})
		defer it.Close()
		lower, upper := append(slices.Clip(prefix), lo[:]...), append(slices.Clip(prefix), hi[:]...)
		if q.Ascending {
			it.Seek(lower)
		} else {
			it.Seek(upper)
		}
		for ; it.Valid(); it.Next() {
			key := it.Item().Key()
			if bytes.Compare(key, lower) < 0 || bytes.Compare(key, upper) >= 0 {
				if q.Ascending || bytes.Compare(key, lower) < 0 {
					break
				}
				continue // the reverse seek landed on upper itself
			}
			id := idOf(key)
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
			var val []byte
			var err error
			if viaIndex {
				item, gerr := txn.Get(dataKeyID(q.Stream, id))
				if errors.Is(gerr, badger.ErrKeyNotFound) {
					continue // deleted by retention since the index entry was read
				} else if gerr != nil {
					return gerr
				}
				val, err = item.ValueCopy(nil)
			} else {
				err = it.Item().Value(func(v []byte) error { val = v; return nil })
			}
			if err != nil {
				return err
			}
			fields, err := decodeFields(val)
			if err != nil {
				return fmt.Errorf("record %x of stream %q: %w", id, q.Stream, err)
			}
			if q.Filter.Match(fields) {
				page.Records = append(page.Records, flowg.Record{Timestamp: timeOf(id.ts()), Fields: fields})
			}
		}
		return nil
	})
	s.m.scannedRecords.Add(float64(page.Scanned))
	return page, err
}

// Streams returns the names of every stream.
func (s *LogStore) Streams() []string {
	names := s.cfg.StreamNames()
	slices.Sort(names)
	return names
}

// Settings returns the settings of a stream.
func (s *LogStore) Settings(stream string) (flowg.StreamSettings, error) {
	st, ok := s.cfg.Stream(stream)
	if !ok {
		return st, fmt.Errorf("stream %q: %w", stream, flowg.ErrNotFound)
	}
	return st, nil
}

// PutSettings changes the settings of a stream, creating it if need be.
// Fields that become indexed are indexed over the records already stored
// before the new settings apply, during which this node's ingest waits;
// fields that stop being indexed lose their index.
func (s *LogStore) PutSettings(ctx context.Context, stream string, st flowg.StreamSettings) error {
	if err := flowg.ValidateStreamName(stream); err != nil {
		return fmt.Errorf("%w: %v", flowg.ErrInvalid, err)
	}
	st.Normalize()
	if err := st.Validate(); err != nil {
		return fmt.Errorf("%w: %v", flowg.ErrInvalid, err)
	}
	return s.do(ctx, func() error {
		old, _ := s.cfg.Stream(stream)
		// New indexes are complete before the settings say they exist.
		if err := s.changeIndexes(stream, old.IndexedFields, st.IndexedFields); err != nil {
			return err
		}
		return s.cfg.putStream(stream, st)
	})
}

// reindex writes index entries for fields over every stored record of stream.
func (s *LogStore) reindex(stream string, fields []string) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: dataPrefix(stream)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id := idOf(it.Item().Key())
			err := it.Item().Value(func(v []byte) error {
				rec, err := decodeFields(v)
				if err != nil {
					return err
				}
				for _, f := range fields {
					if val, ok := rec[f]; ok {
						if err := wb.Set(append(indexPrefix(stream, f, val), id[:]...), nil); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return wb.Flush()
}

// Purge deletes a stream: its records, indexes, usage and settings.
func (s *LogStore) Purge(ctx context.Context, stream string) error {
	if _, ok := s.cfg.Stream(stream); !ok {
		return fmt.Errorf("stream %q: %w", stream, flowg.ErrNotFound)
	}
	return s.do(ctx, func() error {
		if err := s.db.DropPrefix(dataPrefix(stream), indexPrefix(stream)); err != nil {
			return fmt.Errorf("cannot purge stream %q: %w", stream, err)
		}
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(usageKey(stream)) }); err != nil {
			return fmt.Errorf("cannot purge stream %q: %w", stream, err)
		}
		s.usageMu.Lock()
		delete(s.usage, stream)
		s.usageMu.Unlock()
		// Every record held is deleted: the marks are the heads. The
		// origin entries left pointing nowhere are dropped when read.
		return s.cfg.purgeStream(stream, s.Heads())
	})
}

// trimBatch bounds the records that one retention transaction deletes.
const trimBatch = 2000

// ApplyRetention deletes, in every stream that has retention settings, the
// records older than its retention time and the oldest records while it holds
// more than its retention size. It returns the number of records deleted.
func (s *LogStore) ApplyRetention(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, stream := range s.Streams() {
		st, ok := s.cfg.Stream(stream)
		if !ok || (st.RetentionTime == 0 && st.RetentionSize == 0) {
			continue
		}
		var cutoff uint64
		if st.RetentionTime > 0 {
			cutoff = tsOf(now.Add(-st.RetentionTime))
		}
		for {
			var n int
			var more bool
			err := s.do(ctx, func() (err error) {
				n, more, err = s.trimOldest(stream, cutoff, st)
				return err
			})
			total += n
			if err != nil {
				return total, fmt.Errorf("cannot apply retention to stream %q: %w", stream, err)
			}
			if !more {
				break
			}
		}
	}
	s.m.retentionDeleted.Add(float64(total))
	return total, nil
}

// trimOldest deletes up to trimBatch of the oldest records of stream while
// they are older than cutoff or the stream is over its retention size.
func (s *LogStore) trimOldest(stream string, cutoff uint64, st flowg.StreamSettings) (n int, more bool, err error) {
	u := s.streamUsage(stream)
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: dataPrefix(stream)})
	prefix := dataPrefix(stream)
	for it.Seek(prefix); it.Valid(); it.Next() {
		id := idOf(it.Item().Key())
		old := id.ts() < cutoff
		big := st.RetentionSize > 0 && u.bytes > st.RetentionSize
		if !old && !big {
			break
		}
		if n == trimBatch {
			more = true
			break
		}
		dk := it.Item().KeyCopy(nil)
		val, err := it.Item().ValueCopy(nil)
		if err != nil {
			it.Close()
			return 0, false, err
		}
		fields, err := decodeFields(val)
		if err != nil {
			it.Close()
			return 0, false, fmt.Errorf("record %x: %w", id, err)
		}
		if err := txn.Delete(dk); err != nil {
			it.Close()
			return 0, false, err
		}
		if err := txn.Delete(originKey(id.origin(), id.seq())); err != nil {
			it.Close()
			return 0, false, err
		}
		for _, f := range st.IndexedFields {
			if v, ok := fields[f]; ok {
				if err := txn.Delete(append(indexPrefix(stream, f, v), id[:]...)); err != nil {
					it.Close()
					return 0, false, err
				}
			}
		}
		u.records--
		u.bytes -= int64(len(dk) + len(val))
		n++
	}
	if it.Valid() {
		u.oldest = idOf(it.Item().Key()).ts()
	}
	it.Close()
	if u.records <= 0 || u.bytes < 0 {
		u = usage{}
	}
	if n == 0 {
		return 0, false, nil
	}
	if err := txn.Set(usageKey(stream), u.encode()); err != nil {
		return 0, false, err
	}
	if err := txn.Commit(); err != nil {
		return 0, false, err
	}
	s.usageMu.Lock()
	s.usage[stream] = u
	s.usageMu.Unlock()
	return n, more, nil
}

// RunMaintenance applies retention every retentionEvery and collects
// value-log garbage every gcEvery, until ctx ends.
func (s *LogStore) RunMaintenance(ctx context.Context, retentionEvery, gcEvery time.Duration) {
	ret := time.NewTicker(retentionEvery)
	defer ret.Stop()
	gc := time.NewTicker(gcEvery)
	defer gc.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ret.C:
			start := time.Now()
			n, err := s.ApplyRetention(ctx, now)
			if err != nil && ctx.Err() == nil {
				s.log.Error("retention failed", "err", err)
			} else if n > 0 {
				s.log.Info("retention deleted records", "records", n, "took", time.Since(start).Round(time.Millisecond))
			}
		case <-gc.C:
			for s.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

func (s *LogStore) close() error {
	s.closeMu.Lock()
	already := s.closed
	s.closed = true
	s.closeMu.Unlock()
	if already {
		return nil
	}
	close(s.quit)
	<-s.stopped
	s.subsMu.Lock()
	for _, set := range s.subs {
		for sub := range set {
			close(sub.c)
		}
	}
	s.subs = map[string]map[*Subscription]struct{}{}
	s.subsMu.Unlock()
	return s.db.Close()
}

// Helpers on big-endian IDs.

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func putBE(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func beBytes(v uint64) []byte {
	b := make([]byte, 8)
	putBE(b, v)
	return b
}

// increment adds one to id; false when it overflows.
func increment(id *recordID) bool {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			return true
		}
	}
	return false
}

func decrement(id *recordID) {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]--
		if id[i] != math.MaxUint8 {
			return
		}
	}
}

func maxID(a, b recordID) recordID {
	if bytes.Compare(a[:], b[:]) >= 0 {
		return a
	}
	return b
}

func minID(a, b recordID) recordID {
	if bytes.Compare(a[:], b[:]) <= 0 {
		return a
	}
	return b
}
