package store

import (
	"context"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// Stream settings, reindexing, purge, retention and maintenance.

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
