package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// What the replication between nodes needs of the stores: the versioned
// entries of the auth and config databases, and each origin's records in
// the order it took them.

// originNumber returns the local number of an origin, giving it one the
// first time it is seen.
func (s *LogStore) originNumber(origin string) (uint32, error) {
	s.originsMu.RLock()
	n, ok := s.origins[origin]
	s.originsMu.RUnlock()
	if ok {
		return n, nil
	}
	s.originsMu.Lock()
	defer s.originsMu.Unlock()
	if n, ok := s.origins[origin]; ok {
		return n, nil
	}
	if len(origin) == 0 || len(origin) > maxOriginLen {
		return 0, fmt.Errorf("%w: origin %q", flowg.ErrInvalid, origin)
	}
	n = uint32(len(s.origins)) + 1
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(prefixDict+origin), binary.BigEndian.AppendUint32(nil, n))
	}); err != nil {
		return 0, fmt.Errorf("cannot number origin %q: %w", origin, err)
	}
	s.origins[origin], s.names[n] = n, origin
	return n, nil
}

func (s *LogStore) setHead(origin string, seq uint64) {
	s.originsMu.Lock()
	s.heads[origin] = seq
	if _, ok := s.hotSince[origin]; !ok && seq > s.sealed[origin] {
		s.hotSince[origin] = time.Now()
	}
	s.originsMu.Unlock()
	s.changedMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.changedMu.Unlock()
}

// Origin is the origin of the records this node takes: its node ID and,
// for a database made by this version, "@" and a random name the database
// keeps.
func (s *LogStore) Origin() string { return s.origin }

// Head is the last sequence number this node gave a record of its own.
func (s *LogStore) Head() uint64 {
	s.originsMu.RLock()
	defer s.originsMu.RUnlock()
	return s.heads[s.origin]
}

// Heads returns, per origin, the last sequence number this node holds
// (every record up to it, but those deleted since).
func (s *LogStore) Heads() map[string]uint64 {
	s.originsMu.RLock()
	defer s.originsMu.RUnlock()
	return maps.Clone(s.heads)
}

// Changed is closed at the next commit of records.
func (s *LogStore) Changed() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	return s.changed
}

// ReadOrigin returns the records of origin after sequence after, in order,
// up to limit records or about maxBytes of values. upTo is the last
// sequence read, deleted records included: a caller that applies the
// records holds everything up to it.
func (s *LogStore) ReadOrigin(origin string, after uint64, limit, maxBytes int) (recs []flowg.ReplRecord, upTo uint64, err error) {
	s.originsMu.RLock()
	n, ok := s.origins[origin]
	head := s.heads[origin]
	s.originsMu.RUnlock()
	upTo = after
	if !ok || head <= after {
		return nil, after, nil
	}
	var dangling [][]byte
	size := 0
	full := func() bool { return len(recs) >= limit || size >= maxBytes }
	// head is read before the snapshot, so that the snapshot holds every
	// record up to it; what the snapshot holds past it is read too.
	err = s.db.View(func(txn *badger.Txn) error {
		// Rows and rounds hold ranges of sequence numbers that do not
		// overlap (a round covers rows sealed or records written straight
		// into blocks): read them merged, in sequence order.
		rounds := txn.NewIterator(badger.IteratorOptions{Prefix: roundKey(n, 0)[:5], PrefetchValues: true, PrefetchSize: 16})
		defer rounds.Close()
		rounds.Seek(roundKey(n, after+1))
		it := txn.NewIterator(badger.IteratorOptions{Prefix: originKey(n, 0)[:5], PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		it.Seek(originKey(n, after+1))
		var r round
		nextRound := func() error {
			if !rounds.Valid() {
				return nil
			}
			v, err := rounds.Item().ValueCopy(nil)
			if err == nil {
				r, err = decodeRound(rounds.Item().Key(), v)
			}
			if err != nil {
				return fmt.Errorf("round %x: %w", rounds.Item().Key(), err)
			}
			return nil
		}
		if err := nextRound(); err != nil {
			return err
		}
		for !full() {
			if it.Valid() && (!rounds.Valid() || beUint64(it.Item().Key()[5:]) < r.first) {
				seq := beUint64(it.Item().Key()[5:])
				ptr, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				stream, ts, err := parseOriginValue(ptr)
				if err != nil {
					return fmt.Errorf("origin entry %x: %w", it.Item().Key(), err)
				}
				item, err := txn.Get(dataKey(stream, ts, n, seq))
				if errors.Is(err, badger.ErrKeyNotFound) {
					// Deleted by a purge; retention deletes both keys.
					dangling = append(dangling, it.Item().KeyCopy(nil))
					upTo = seq
					it.Next()
					continue
				} else if err != nil {
					return err
				}
				v, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				recs = append(recs, flowg.ReplRecord{Stream: stream, TS: ts, Seq: seq, Value: v})
				size += len(v) + len(stream)
				upTo = seq
				it.Next()
				continue
			}
			if !rounds.Valid() {
				break
			}
			var done bool
			if recs, upTo, size, done, err = s.readRound(txn, r, recs, upTo, size, limit, maxBytes); err != nil || done {
				return err
			}
			rounds.Next()
			if err := nextRound(); err != nil {
				return err
			}
		}
		if !full() {
			upTo = max(upTo, head) // nothing more up to head: all deleted
		}
		return nil
	})
	if err == nil && len(dangling) > 0 {
		// The clean-up is a write: the writer does it, and the reader does
		// not wait for it.
		go func() {
			err := s.do(context.Background(), func() error {
				return s.db.Update(func(txn *badger.Txn) error {
					for _, k := range dangling {
						if err := txn.Delete(k); err != nil {
							return err
						}
					}
					return nil
				})
			})
			if err != nil && !errors.Is(err, flowg.ErrClosed) {
				s.log.Warn("cannot delete the origin entries of purged records", "origin", origin, "entries", len(dangling), "err", err)
			}
		}()
	}
	return recs, upTo, err
}

// readRound adds to recs the records of round r after sequence upTo, in
// sequence order, up to limit records or about maxBytes: done when that
// stopped it; upTo is the last sequence covered.
func (s *LogStore) readRound(txn *badger.Txn, r round, recs []flowg.ReplRecord, upTo uint64, size, limit, maxBytes int) (_ []flowg.ReplRecord, _ uint64, _ int, done bool, err error) {
	var in []flowg.ReplRecord
	for _, rb := range r.blocks {
		blk, err := readBlock(txn, rb.stream, rb.ref, blockRead{})
		if err != nil {
			return nil, 0, 0, false, err
		}
		if blk == nil {
			continue
		}
		fields := map[string]string{}
		for i := range blk.len() {
			id := blk.id(i)
			if id.seq() <= upTo || id.seq() > r.last {
				continue
			}
			blk.fields(i, fields)
			in = append(in, flowg.ReplRecord{Stream: rb.stream, TS: id.ts(), Seq: id.seq(), Value: encodeFields(fields)})
		}
	}
	slices.SortFunc(in, func(a, b flowg.ReplRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, rec := range in {
		if len(recs) >= limit || size >= maxBytes {
			return recs, upTo, size, true, nil
		}
		recs = append(recs, rec)
		size += len(rec.Value) + len(rec.Stream)
		upTo = rec.Seq
	}
	return recs, r.last, size, false, nil
}

// ApplyOrigin stores records that origin took, which another node sent,
// and moves this node's mark for origin to upTo, in one transaction.
// Records at or below the mark are skipped, so applying a batch twice
// changes nothing; records a purge already deleted are dropped. The
// records reach live tails and indexes as local ones do.
func (s *LogStore) ApplyOrigin(ctx context.Context, origin string, recs []flowg.ReplRecord, upTo uint64) (int, error) {
	if err := s.disk.check(); err != nil {
		return 0, err
	}
	if origin == s.origin {
		return 0, fmt.Errorf("%w: records of this node's own origin", flowg.ErrInvalid)
	}
	for _, r := range recs {
		if err := flowg.ValidateStreamName(r.Stream); err != nil {
			return 0, fmt.Errorf("%w: %v", flowg.ErrInvalid, err)
		}
		if r.Seq > upTo {
			return 0, fmt.Errorf("%w: record %d beyond the batch's end %d", flowg.ErrInvalid, r.Seq, upTo)
		}
	}
	n, err := s.originNumber(origin)
	if err != nil {
		return 0, err
	}
	applied := 0
	err = s.do(ctx, func() error {
		var ferr error
		applied, ferr = s.applyParts(origin, n, recs, upTo)
		return ferr
	})
	return applied, err
}

// applyParts applies a batch in one transaction or, when it is too large
// for one (the memory budget sizes them), in halves in a row: the first
// half moves the mark to its last record, so a crash between the two
// loses nothing and applying again changes nothing.
func (s *LogStore) applyParts(origin string, n uint32, recs []flowg.ReplRecord, upTo uint64) (int, error) {
	applied, err := s.applyOriginTxn(origin, n, recs, upTo)
	if !errors.Is(err, badger.ErrTxnTooBig) || len(recs) < 2 {
		return applied, err
	}
	half := len(recs) / 2
	a, err := s.applyParts(origin, n, recs[:half], recs[half-1].Seq)
	if err != nil {
		return a, err
	}
	b, err := s.applyParts(origin, n, recs[half:], upTo)
	return a + b, err
}

func (s *LogStore) applyOriginTxn(origin string, n uint32, recs []flowg.ReplRecord, upTo uint64) (int, error) {
	s.originsMu.RLock()
	mark := s.heads[origin]
	s.originsMu.RUnlock()
	if upTo <= mark {
		return 0, nil
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	// What each stream of the batch needs is looked up once per batch.
	type streamState struct {
		settings  flowg.StreamSettings
		purgeMark uint64
	}
	streams := map[string]streamState{}
	touched := map[string]usage{}
	published := map[string][]flowg.Record{}
	var order []string
	var rows []liveRow
	applied := 0
	// Records of a stream taken in one batch go straight into blocks as
	// local ones do (see directStreams), when every stream of the batch
	// has enough of them: one round then covers the batch's whole range,
	// where no row may be.
	direct := s.sealAfter > 0 && len(recs) >= directMin
	if direct {
		times := map[string][]uint64{}
		for _, r := range recs {
			if r.Seq > mark {
				times[r.Stream] = append(times[r.Stream], r.TS)
			}
		}
		for _, ts := range times {
			direct = direct && fillsBlocks(ts)
		}
	}
	blockRecs := map[string][]blockRec{}
	for _, r := range recs {
		st, ok := streams[r.Stream]
		if !ok {
			st.purgeMark = s.cfg.purgeMark(r.Stream, origin)
			streams[r.Stream] = st
		}
		if r.Seq <= mark || r.Seq <= st.purgeMark {
			continue
		}
		fields, err := decodeFields(r.Value)
		if err != nil {
			return 0, fmt.Errorf("%w: record %d of %s: %v", flowg.ErrInvalid, r.Seq, origin, err)
		}
		u, ok := touched[r.Stream]
		if !ok {
			// The first record stored in a stream makes it exist here.
			if st.settings, err = s.cfg.ensureStream(r.Stream); err != nil {
				return 0, err
			}
			streams[r.Stream] = st
			u = s.streamUsage(r.Stream)
			order = append(order, r.Stream)
		}
		if direct {
			blockRecs[r.Stream] = append(blockRecs[r.Stream], blockRec{id: newID(r.TS, n, r.Seq), fields: fields})
			u.add(r.TS, rowSize(r.Stream, r.Value))
		} else {
			size, err := putRecord(txn, r.Stream, r.TS, n, r.Seq, r.Value, st.settings.IndexedFields, fields)
			if err != nil {
				return 0, err
			}
			rows = append(rows, liveRow{r.Stream, n, r.Seq, r.TS})
			u.add(r.TS, size)
		}
		touched[r.Stream] = u
		published[r.Stream] = append(published[r.Stream], flowg.Record{Timestamp: timeOf(r.TS), Fields: fields})
		applied++
	}
	r := round{first: mark + 1, last: upTo}
	for _, stream := range order {
		if len(blockRecs[stream]) == 0 {
			continue
		}
		blocks, err := putBlocks(txn, stream, n, blockRecs[stream], streams[stream].settings.IndexedFields)
		if err != nil {
			return 0, err
		}
		r.blocks = append(r.blocks, blocks...)
	}
	if err := r.put(txn, n); err != nil {
		return 0, err
	}
	for stream, u := range touched {
		if err := txn.Set(usageKey(stream), u.encode()); err != nil {
			return 0, err
		}
	}
	if err := txn.Set([]byte(prefixMark+origin), beBytes(upTo)); err != nil {
		return 0, err
	}
	s.addRows(rows)
	if err := txn.Commit(); err != nil {
		return 0, err
	}
	if len(r.blocks) > 0 {
		s.sealedDirect(origin, r)
	}
	s.usageMu.Lock()
	maps.Copy(s.usage, touched)
	s.usageMu.Unlock()
	s.setHead(origin, upTo)
	s.m.storedRecords.Add(float64(applied))
	for _, stream := range order {
		s.publish(stream, published[stream])
	}
	return applied, nil
}

// applyConfig brings the log store in line with config entries another
// node sent: indexes for fields that became indexed, none for fields that
// stopped, and the records a purge deleted. It runs on the writer.
func (s *LogStore) applyConfig(entries []flowg.MetaEntry) (int, error) {
	n := 0
	err := s.do(context.Background(), func() error {
		applied, err := s.cfg.meta.apply(entries)
		if err != nil {
			return err
		}
		n = len(applied)
		for _, e := range applied {
			name, isStream := strings.CutPrefix(e.Key, prefixStream)
			old, _ := s.cfg.Stream(name)
			if err := s.cfg.cached(e); err != nil {
				return fmt.Errorf("config entry %q: %w", e.Key, err)
			}
			if isStream {
				st, _ := s.cfg.Stream(name)
				if err := s.changeIndexes(name, old.IndexedFields, st.IndexedFields); err != nil {
					return err
				}
			}
			if stream, ok := strings.CutPrefix(e.Key, prefixPurge); ok {
				if err := s.purgeUpTo(stream); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}

// changeIndexes indexes the fields in now but not in was, and drops the
// index of those in was but not in now.
func (s *LogStore) changeIndexes(stream string, was, now []string) error {
	var added []string
	for _, f := range now {
		if !slices.Contains(was, f) {
			added = append(added, f)
		}
	}
	if len(added) > 0 {
		if err := s.reindex(stream, added); err != nil {
			return fmt.Errorf("cannot index %v of stream %q: %w", added, stream, err)
		}
	}
	for _, f := range was {
		if !slices.Contains(now, f) {
			if err := s.db.DropPrefix(indexPrefix(stream, f), blockIndexPrefix(stream, f)); err != nil {
				return fmt.Errorf("cannot drop the index of %q in stream %q: %w", f, stream, err)
			}
		}
	}
	return nil
}

// purgeUpTo deletes the records of stream that a purge on another node
// covered (each origin's up to the purge's mark), and counts what is left.
func (s *LogStore) purgeUpTo(stream string) error {
	var u usage
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: dataPrefix(stream), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id := idOf(it.Item().Key())
			s.originsMu.RLock()
			origin := s.names[id.origin()]
			s.originsMu.RUnlock()
			if id.seq() > s.cfg.purgeMark(stream, origin) {
				u.add(id.ts(), int64(len(it.Item().Key()))+it.Item().ValueSize())
				continue
			}
			if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
			if err := wb.Delete(originKey(id.origin(), id.seq())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	if err := s.purgeBlocks(stream, &u); err != nil {
		return err
	}
	// The index is rebuilt over what is left.
	if err := s.db.DropPrefix(indexPrefix(stream), blockIndexPrefix(stream)); err != nil {
		return err
	}
	if st, ok := s.cfg.Stream(stream); ok && u.records > 0 {
		if err := s.reindex(stream, st.IndexedFields); err != nil {
			return err
		}
	}
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	if u.records == 0 {
		delete(s.usage, stream)
		return s.db.Update(func(txn *badger.Txn) error { return txn.Delete(usageKey(stream)) })
	}
	s.usage[stream] = u
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set(usageKey(stream), u.encode()) })
}

// purgeBlocks takes out of stream's blocks the records a purge covered,
// and adds what is left to u.
func (s *LogStore) purgeBlocks(stream string, u *usage) error {
	var cuts []*blockCut
	err := s.eachBlock(stream, nil, func(blk *block) error {
		s.originsMu.RLock()
		origin := s.names[blk.origin]
		s.originsMu.RUnlock()
		mark := s.cfg.purgeMark(stream, origin)
		c := &blockCut{blk: blk, drop: map[int]bool{}}
		fields := map[string]string{}
		for i := range blk.len() {
			id := blk.id(i)
			if id.seq() <= mark {
				c.drop[i] = true
				continue
			}
			blk.fields(i, fields)
			u.add(id.ts(), recordSize(stream, fields))
		}
		if len(c.drop) > 0 {
			cuts = append(cuts, c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range cuts {
		// The index is rebuilt after: none is kept here.
		if err := s.db.Update(func(txn *badger.Txn) error { return c.rewrite(txn, stream, nil) }); err != nil {
			return err
		}
	}
	return nil
}

// Store-level replication of the auth and config databases.

// OnMetaChange has fn called with the entries of every local change to the
// auth or config database, once committed.
func (s *Store) OnMetaChange(fn func([]flowg.MetaEntry)) {
	s.Auth.meta.onChange.Store(&fn)
	s.Logs.cfg.meta.onChange.Store(&fn)
}

func (s *Store) metaDBs() []*metaDB { return []*metaDB{s.Auth.meta, s.Logs.cfg.meta} }

// MetaEntries returns every entry of the auth and config databases,
// tombstones included, or only those in the given digest buckets.
func (s *Store) MetaEntries(buckets ...uint8) ([]flowg.MetaEntry, error) {
	var out []flowg.MetaEntry
	for _, m := range s.metaDBs() {
		es, err := m.entries()
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if len(buckets) == 0 || slices.Contains(buckets, MetaBucket(e.Key)) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// MetaDigest is, per database, one hash per bucket of keys.
func (s *Store) MetaDigest() (map[string]map[uint8]uint64, error) {
	out := map[string]map[uint8]uint64{}
	for _, m := range s.metaDBs() {
		es, err := m.entries()
		if err != nil {
			return nil, err
		}
		out[m.name] = metaDigest(es)
	}
	return out, nil
}

// ApplyMeta applies entries from another node: the newer version of each
// key wins. It returns how many entries changed this node.
func (s *Store) ApplyMeta(entries []flowg.MetaEntry) (int, error) {
	var auth, config []flowg.MetaEntry
	for _, e := range entries {
		switch e.DB {
		case "auth":
			auth = append(auth, e)
		case "config":
			config = append(config, e)
		default:
			return 0, fmt.Errorf("%w: database %q", flowg.ErrInvalid, e.DB)
		}
	}
	n := 0
	if len(auth) > 0 {
		applied, err := s.Auth.meta.apply(auth)
		if err != nil {
			return 0, err
		}
		n += len(applied)
	}
	if len(config) > 0 {
		k, err := s.Logs.applyConfig(config)
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// ReplaceMeta makes the auth and config databases hold exactly entries,
// whatever the versions: for a node that was away longer than tombstones
// are kept, whose own entries may bring back what was deleted meanwhile.
func (s *Store) ReplaceMeta(entries []flowg.MetaEntry) error {
	keep := map[string]bool{}
	for _, e := range entries {
		keep[e.DB+"/"+e.Key] = true
	}
	for _, m := range s.metaDBs() {
		local, err := m.entries()
		if err != nil {
			return err
		}
		if err := m.db.Update(func(txn *badger.Txn) error {
			for _, e := range local {
				if !keep[m.name+"/"+e.Key] {
					if err := txn.Delete([]byte(e.Key)); err != nil {
						return err
					}
				}
			}
			for _, e := range entries {
				if e.DB == m.name {
					if err := txn.Set([]byte(e.Key), e.Value); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	// The config cache and the log store follow: indexes for the fields
	// indexed now, and the records the cluster's purges deleted.
	return s.Logs.do(context.Background(), func() error {
		cfg := s.Logs.cfg
		cfg.mu.Lock()
		old := cfg.streams
		cfg.streams, cfg.purges = map[string]flowg.StreamSettings{}, map[string]map[string]uint64{}
		cfg.mu.Unlock()
		for _, e := range entries {
			if e.DB == "config" {
				if err := cfg.cached(e); err != nil {
					return err
				}
			}
		}
		names := map[string]bool{}
		for name := range old {
			names[name] = true
		}
		for _, name := range cfg.StreamNames() {
			names[name] = true
		}
		for name := range names {
			now, _ := cfg.Stream(name)
			if err := s.Logs.changeIndexes(name, old[name].IndexedFields, now.IndexedFields); err != nil {
				return err
			}
		}
		cfg.mu.RLock()
		purged := slices.Collect(maps.Keys(cfg.purges))
		cfg.mu.RUnlock()
		for _, stream := range purged {
			if err := s.Logs.purgeUpTo(stream); err != nil {
				return err
			}
		}
		return nil
	})
}

// DropTombstones deletes tombstones older than window from the auth and
// config databases.
func (s *Store) DropTombstones(window time.Duration) (int, error) {
	n := 0
	for _, m := range s.metaDBs() {
		k, err := m.dropTombstones(time.Now().Add(-window))
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}
