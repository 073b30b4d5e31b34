package store

import (
	"context"
	"errors"
	"fmt"
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
	var rows []liveRow
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
			rows = append(rows, liveRow{r.stream, s.self, seq, ts})
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
	s.addRows(rows)
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
