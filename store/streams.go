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
	err = s.eachBlock(stream, fields, func(blk *block) error {
		recs := make([]blockRec, blk.len())
		for i := range recs {
			recs[i].fields = map[string]string{}
			blk.fields(i, recs[i].fields)
		}
		return indexBlock(wb.Set, stream, blk.ref, recs, fields, nil)
	})
	if err != nil {
		return err
	}
	return wb.Flush()
}

// eachBlock calls fn with every block of stream, decoding the columns in
// want (all when nil).
func (s *LogStore) eachBlock(stream string, want []string, fn func(*block) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: blockPrefix(stream), PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			blk, err := readBlock(txn, stream, refOf(it.Item().Key()), blockRead{want: want, item: it.Item()})
			if err != nil {
				return err
			}
			if blk != nil {
				if err := fn(blk); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Purge deletes a stream: its records, indexes, usage and settings.
func (s *LogStore) Purge(ctx context.Context, stream string) error {
	if _, ok := s.cfg.Stream(stream); !ok {
		return fmt.Errorf("stream %q: %w", stream, flowg.ErrNotFound)
	}
	return s.do(ctx, func() error {
		if err := s.db.DropPrefix(dataPrefix(stream), indexPrefix(stream), blockPrefix(stream), blockIndexPrefix(stream)); err != nil {
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
// they are older than cutoff or the stream is over its retention size (a
// block being cut is finished first, so that it is rewritten once).
func (s *LogStore) trimOldest(stream string, cutoff uint64, st flowg.StreamSettings) (n int, more bool, err error) {
	u := s.streamUsage(stream)
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	p := plan{stream: stream, prefix: dataPrefix(stream)}
	for i := range p.hi {
		p.hi[i] = 0xff
	}
	s.spanMu.RLock()
	rows := s.spans[stream]
	s.spanMu.RUnlock()
	m := newMerger(txn, p, rows, false, nil, nil)
	defer m.close()
	cut := map[blockRef]*blockCut{}
	var last *block
	for {
		id, ok, err := m.next()
		if err != nil {
			return 0, false, err
		}
		if !ok {
			u = usage{}
			break
		}
		old := id.ts() < cutoff
		big := st.RetentionSize > 0 && u.bytes > st.RetentionSize
		if !old && !big {
			u.oldest = id.ts()
			break
		}
		if n >= trimBatch && (m.cur.blk == nil || m.cur.blk != last) {
			more = true
			break
		}
		last = m.cur.blk
		fields := map[string]string{}
		if _, err := m.record(fields, false); err != nil {
			return 0, false, err
		}
		if last != nil {
			c := cut[last.ref]
			if c == nil {
				c = &blockCut{blk: last, drop: map[int]bool{}}
				cut[last.ref] = c
			}
			c.drop[m.cur.pos] = true
		} else if err := deleteRow(txn, stream, id, fields, st.IndexedFields); err != nil {
			return 0, false, err
		}
		u.records--
		u.bytes -= recordSize(stream, fields)
		n++
	}
	m.close() // before the transaction writes more
	for _, c := range cut {
		if err := c.rewrite(txn, stream, st.IndexedFields); err != nil {
			return 0, false, err
		}
	}
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

// deleteRow deletes a row: its data key, origin entry and index entries.
func deleteRow(txn *badger.Txn, stream string, id recordID, fields map[string]string, indexed []string) error {
	if err := txn.Delete(dataKeyID(stream, id)); err != nil {
		return err
	}
	if err := txn.Delete(originKey(id.origin(), id.seq())); err != nil {
		return err
	}
	for _, f := range indexed {
		if v, ok := fields[f]; ok {
			if err := txn.Delete(append(indexPrefix(stream, f, v), id[:]...)); err != nil {
				return err
			}
		}
	}
	return nil
}

// blockCut is a block, every column decoded, and the rows to take out of
// it.
type blockCut struct {
	blk  *block
	drop map[int]bool
}

// rewrite writes the block without the dropped rows, under the same key
// (its bounds still hold), or deletes it when none is left; the index
// entries of values no row holds any more go.
func (c *blockCut) rewrite(txn *badger.Txn, stream string, indexed []string) error {
	var keep []blockRec
	gone := map[string]map[string]bool{}
	for i := range c.blk.len() {
		id := c.blk.id(i)
		fields := map[string]string{}
		c.blk.fields(i, fields)
		if c.drop[i] {
			for _, f := range indexed {
				if v, ok := fields[f]; ok {
					if gone[f] == nil {
						gone[f] = map[string]bool{}
					}
					gone[f][v] = true
				}
			}
			continue
		}
		keep = append(keep, blockRec{id: id, fields: fields})
	}
	for _, rec := range keep {
		for f, vs := range gone {
			delete(vs, rec.fields[f])
		}
	}
	for f, vs := range gone {
		for v := range vs {
			if err := txn.Delete(append(blockIndexPrefix(stream, f, v), c.blk.ref.bytes()...)); err != nil {
				return err
			}
		}
	}
	key := blockKey(stream, c.blk.ref)
	if len(keep) == 0 {
		return txn.Delete(key)
	}
	return txn.Set(key, encodeBlock(c.blk.origin, keep))
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
