package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// The write path: every record this node takes or applies is written by
// the one writer goroutine, in group commits.

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
		// The value, and what the record adds beside it: its data and
		// origin keys, index keys, Badger's per-entry overhead.
		req.size += len(req.vals[i]) + recordOverhead
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
	limit := min(groupBytes, int(s.db.MaxBatchSize()/2))
	for size < limit {
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
	usageOf := func(stream string) usage {
		if u, ok := touched[stream]; ok {
			return u
		}
		return s.streamUsage(stream)
	}
	// The streams with enough records in this commit go straight into
	// blocks, with the lowest sequence numbers of the commit, so that one
	// round covers them; the others are rows.
	direct := s.directStreams(batch)
	r := round{first: seq + 1}
	for _, stream := range direct {
		settings, _ := s.cfg.Stream(stream)
		u := usageOf(stream)
		var recs []blockRec
		for _, req := range batch {
			if req.stream != stream {
				continue
			}
			for i, rec := range req.recs {
				seq++
				ts := tsOf(rec.Timestamp)
				recs = append(recs, blockRec{id: newID(ts, s.self, seq), fields: rec.Fields})
				u.add(ts, rowSize(stream, req.vals[i]))
			}
		}
		touched[stream] = u
		blocks, err := putBlocks(txn, stream, s.self, recs, settings.IndexedFields)
		if err != nil {
			return err
		}
		r.blocks = append(r.blocks, blocks...)
	}
	r.last = seq
	if err := r.put(txn, s.self); err != nil {
		return err
	}
	var rows []liveRow
	for _, req := range batch {
		if slices.Contains(direct, req.stream) {
			continue
		}
		settings, _ := s.cfg.Stream(req.stream)
		u := usageOf(req.stream)
		for i, rec := range req.recs {
			seq++
			ts := tsOf(rec.Timestamp)
			size, err := putRecord(txn, req.stream, ts, s.self, seq, req.vals[i], settings.IndexedFields, rec.Fields)
			if err != nil {
				return err
			}
			u.add(ts, size)
			rows = append(rows, liveRow{req.stream, s.self, seq, ts})
		}
		touched[req.stream] = u
	}
	for stream, u := range touched {
		if err := txn.Set(usageKey(stream), u.encode()); err != nil {
			return err
		}
	}
	if err := txn.Set([]byte(keySeq), beBytes(seq)); err != nil {
		return err
	}
	s.addRows(rows)
	if err := txn.Commit(); err != nil {
		return err
	}
	s.seq = seq
	if len(r.blocks) > 0 {
		s.sealedDirect(s.origin, r)
	}
	s.setHead(s.origin, seq)
	s.usageMu.Lock()
	for stream, u := range touched {
		s.usage[stream] = u
	}
	s.usageMu.Unlock()
	return nil
}

// directMin is how many records of one stream a commit must hold, and
// directPerBlock how many a block of them must hold on average, for the
// writer to put them straight into blocks. Below, they are rows that the
// sealer gathers with the next ones: a block of a few records costs its
// header, its index entries and a read per query, and compresses little.
// Straight into blocks, a record is written once, where a row is written,
// read back, deleted, and its tombstone compacted: BenchmarkQuestions
// ingests with 4.1-6.6x less CPU a record than with rows only.
const (
	directMin      = 256
	directPerBlock = 128
)

// directStreams are the streams of batch whose records go straight into
// blocks, in the order of batch: none when the store keeps rows only.
func (s *LogStore) directStreams(batch []*appendReq) []string {
	total := 0
	for _, req := range batch {
		total += len(req.recs)
	}
	if s.sealAfter <= 0 || total < directMin {
		return nil
	}
	var order []string
	ts := map[string][]uint64{}
	for _, req := range batch {
		if _, ok := ts[req.stream]; !ok {
			order = append(order, req.stream)
		}
		for _, rec := range req.recs {
			ts[req.stream] = append(ts[req.stream], tsOf(rec.Timestamp))
		}
	}
	var direct []string
	for _, stream := range order {
		if fillsBlocks(ts[stream]) {
			direct = append(direct, stream)
		}
	}
	return direct
}

// fillsBlocks tells whether records of one stream at these times are
// enough, and close enough in time, to go straight into blocks (see
// directMin); it sorts ts.
func fillsBlocks(ts []uint64) bool {
	if len(ts) < directMin {
		return false
	}
	slices.Sort(ts)
	blocks := 0
	for i := 0; i < len(ts); blocks++ {
		i += blockLen(len(ts)-i, func(k int) uint64 { return ts[i+k] - ts[i] })
	}
	return len(ts) >= blocks*directPerBlock
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
	return rowSize(stream, value), nil
}

// rowSize is what a record counts for in its stream's usage: its row's
// key and value, whether it is a row or in a block (see recordSize).
func rowSize(stream string, value []byte) int64 { return int64(len(stream) + 2 + idLen + len(value)) }
