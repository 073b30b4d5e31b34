package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// Sealing: records are written as rows (one key each, see write.go) so
// that a commit is cheap and a 2xx means committed; in the background the
// sealer moves them, origin by origin in sequence order, into blocks
// (block.go). One step seals up to sealStepRecords of one origin's rows
// in one transaction: it writes the blocks, their index entries and a
// round, and deletes the rows, their index entries and their origin
// entries, so a crash leaves every record either a row or in a block,
// never both nor neither. A database of an older version holds only rows:
// the sealer moves them the same way (online, a step at a time, resumable
// since each step commits alone), logging its progress.
//
// A round is what replication reads instead of the origin entries once
// records are sealed:
//
//	'r' origin(4) last(8) → first(8) then, per block, uvarint(len stream) stream blockRef(28)
//
// it says that the origin's records with sequence numbers in [first, last]
// are in these blocks (or were deleted since).
const prefixRound = 'r'

// sealStepRecords bounds the rows one seal step moves (a few blocks),
// which the writer waits for.
const sealStepRecords = 4 * maxBlockRecords

func roundKey(origin uint32, last uint64) []byte {
	b := make([]byte, 0, 13)
	b = append(b, prefixRound)
	b = binary.BigEndian.AppendUint32(b, origin)
	return binary.BigEndian.AppendUint64(b, last)
}

// round is a round decoded.
type round struct {
	first, last uint64
	blocks      []roundBlock
}

type roundBlock struct {
	stream string
	ref    blockRef
}

func (r round) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, r.first)
	for _, blk := range r.blocks {
		b = binary.AppendUvarint(b, uint64(len(blk.stream)))
		b = append(b, blk.stream...)
		b = append(b, blk.ref.bytes()...)
	}
	return b
}

// put writes the round of origin n in txn, when it names blocks.
func (r round) put(txn *badger.Txn, n uint32) error {
	if len(r.blocks) == 0 {
		return nil
	}
	return txn.Set(roundKey(n, r.last), r.encode())
}

func decodeRound(key, v []byte) (r round, err error) {
	if len(key) != 13 || len(v) < 8 {
		return r, errCorrupt
	}
	r.last, r.first, v = beUint64(key[5:]), beUint64(v), v[8:]
	for len(v) > 0 {
		l, w := binary.Uvarint(v)
		if w <= 0 || l > uint64(len(v)-w) || len(v)-w-int(l) < blockRefLen {
			return r, errCorrupt
		}
		stream := string(v[w : w+int(l)])
		v = v[w+int(l):]
		r.blocks = append(r.blocks, roundBlock{stream, refOf(v[:blockRefLen])})
		v = v[blockRefLen:]
	}
	return r, nil
}

// DefaultSealAfter is how long a row waits to be sealed when its origin
// has fewer than a block's worth of rows.
const DefaultSealAfter = 10 * time.Second

// loadSealed reads, per origin, the last sequence number sealed: the one
// before its oldest row, or without rows the last of its rounds; and how
// many records the rounds after it hold (written straight into blocks).
func (s *LogStore) loadSealed() error {
	return s.db.View(func(txn *badger.Txn) error {
		for name, n := range s.origins {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: roundKey(n, 0)[:5], Reverse: true})
			it.Seek(roundKey(n, ^uint64(0)))
			if it.Valid() {
				s.sealed[name] = beUint64(it.Item().Key()[5:])
			}
			it.Close()
			it = txn.NewIterator(badger.IteratorOptions{Prefix: originKey(n, 0)[:5]})
			it.Rewind()
			if it.Valid() {
				s.sealed[name] = min(s.sealed[name], beUint64(it.Item().Key()[5:])-1)
			}
			it.Close()
			err := eachRound(txn, n, s.sealed[name], func(first, last uint64) bool {
				s.ahead[name] += last - first + 1
				return true
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// eachRound calls fn with the range of each of origin n's rounds that end
// after sequence after, in order, while it returns true.
func eachRound(txn *badger.Txn, n uint32, after uint64, fn func(first, last uint64) bool) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: roundKey(n, 0)[:5]})
	defer it.Close()
	for it.Seek(roundKey(n, after+1)); it.Valid(); it.Next() {
		var first uint64
		if err := it.Item().Value(func(v []byte) error {
			if len(v) < 8 {
				return errCorrupt
			}
			first = beUint64(v)
			return nil
		}); err != nil {
			return fmt.Errorf("round %x: %w", it.Item().Key(), err)
		}
		if !fn(first, beUint64(it.Item().Key()[5:])) {
			return nil
		}
	}
	return nil
}

// sealedDirect records a round the writer wrote straight into blocks:
// the origin's sealed mark moves past it when no row is left before it.
func (s *LogStore) sealedDirect(origin string, r round) {
	s.originsMu.Lock()
	defer s.originsMu.Unlock()
	if s.sealed[origin]+1 >= r.first {
		s.sealed[origin] = r.last
	} else {
		s.ahead[origin] += r.last - r.first + 1
	}
}

// sealMark moves origin's sealed mark past the rounds that follow it
// (written straight into blocks), and returns it and the last sequence
// number the next seal step may cover: the head, or the one before the
// next such round, which holds no row. On the writer.
func (s *LogStore) sealMark(origin string, n uint32) (after, bound uint64, err error) {
	s.originsMu.RLock()
	after, bound = s.sealed[origin], s.heads[origin]
	s.originsMu.RUnlock()
	mark, skipped := after, uint64(0)
	err = s.db.View(func(txn *badger.Txn) error {
		return eachRound(txn, n, after, func(first, last uint64) bool {
			if first > after+1 {
				bound = min(bound, first-1)
				return false
			}
			skipped += last - first + 1
			after = last
			return true
		})
	})
	if err != nil || after == mark {
		return after, bound, err
	}
	s.originsMu.Lock()
	s.sealed[origin] = after
	s.ahead[origin] -= min(s.ahead[origin], skipped)
	if after >= s.heads[origin] {
		delete(s.hotSince, origin)
	}
	s.originsMu.Unlock()
	return after, bound, nil
}

// hotRows is how many records at most are still rows.
func (s *LogStore) hotRows() uint64 {
	s.originsMu.RLock()
	defer s.originsMu.RUnlock()
	var n uint64
	for o, head := range s.heads {
		n += head - min(head, s.sealed[o]+s.ahead[o])
	}
	return n
}

// sealer seals rows until the store closes.
func (s *LogStore) sealer() {
	defer close(s.sealerDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.quit
		cancel()
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	if backlog := s.hotRows(); backlog >= migrateLogAt {
		s.log.Info("sealing rows into blocks", "records", backlog)
	}
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
			if err := s.seal(ctx, false); err != nil && ctx.Err() == nil && !errors.Is(err, flowg.ErrClosed) {
				s.log.Error("cannot seal rows into blocks", "err", err)
			}
		}
	}
}

// migrateLogAt is the backlog of rows past which the sealer logs its
// progress (a database written by a version without blocks, or a long
// outage of the sealer).
const migrateLogAt = 50_000

// Seal seals every row into blocks now.
func (s *LogStore) Seal(ctx context.Context) error { return s.seal(ctx, true) }

// seal seals the rows of every origin that has a block's worth of them,
// or whose oldest row waited sealAfter; every row with all.
func (s *LogStore) seal(ctx context.Context, all bool) error {
	if s.disk.check() != nil {
		// A step writes its blocks before the rows it deletes free
		// anything: on a full disk the rows wait.
		return nil
	}
	backlog := s.hotRows()
	logged, done := time.Now(), 0
	s.originsMu.RLock()
	origins := make([]string, 0, len(s.heads))
	for o := range s.heads {
		origins = append(origins, o)
	}
	s.originsMu.RUnlock()
	for _, origin := range origins {
		for {
			s.originsMu.RLock()
			hot := s.heads[origin] - min(s.heads[origin], s.sealed[origin]+s.ahead[origin])
			since, n := s.hotSince[origin], s.origins[origin]
			s.originsMu.RUnlock()
			if hot == 0 || !all && hot < sealStepRecords && time.Since(since) < s.sealAfter {
				break
			}
			k, err := s.sealOrigin(ctx, origin, n)
			if err != nil {
				return err
			}
			done += k
			if backlog >= migrateLogAt && time.Since(logged) >= 10*time.Second {
				s.log.Info("sealing rows into blocks", "sealed", done, "left", s.hotRows())
				logged = time.Now()
			}
		}
	}
	if backlog >= migrateLogAt && done > 0 {
		s.log.Info("sealed rows into blocks", "records", done, "left", s.hotRows())
	}
	return nil
}

// sealOrigin seals the next step of origin's rows, on the writer.
func (s *LogStore) sealOrigin(ctx context.Context, origin string, n uint32) (int, error) {
	sealed := 0
	err := s.do(ctx, func() error {
		after, bound, err := s.sealMark(origin, n)
		if err != nil || bound <= after {
			return err
		}
		for limit := sealStepRecords; ; limit /= 2 {
			start := time.Now()
			k, err := s.sealStep(origin, n, after, bound, limit)
			s.log.Debug("seal step", "origin", origin, "after", after, "limit", limit, "records", k, "took", time.Since(start), "err", err)
			if errors.Is(err, badger.ErrTxnTooBig) && limit > 1 {
				continue
			}
			if err != nil {
				return fmt.Errorf("origin %q after %d: %w", origin, after, err)
			}
			sealed = k
			s.m.sealedRecords.Add(float64(k))
			_, _, err = s.sealMark(origin, n)
			return err
		}
	})
	return sealed, err
}

// sealStep seals, in one transaction, origin n's rows after sequence
// after, up to limit records (all up to head when fewer): it returns how
// many.
func (s *LogStore) sealStep(origin string, n uint32, after, head uint64, limit int) (int, error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	byStream := map[string][]blockRec{}
	var streams []string
	last, count, size := after, 0, 0
	it := txn.NewIterator(badger.IteratorOptions{Prefix: originKey(n, 0)[:5], PrefetchValues: true, PrefetchSize: 256})
	it.Seek(originKey(n, after+1))
	for ; it.Valid(); it.Next() {
		seq := beUint64(it.Item().Key()[5:])
		if seq > head || count == limit || size >= maxBlockBytes {
			break
		}
		ok := it.Item().KeyCopy(nil)
		ptr, err := it.Item().ValueCopy(nil)
		if err != nil {
			it.Close()
			return 0, err
		}
		stream, ts, err := parseOriginValue(ptr)
		if err != nil {
			it.Close()
			return 0, fmt.Errorf("origin entry %x: %w", ok, err)
		}
		last = seq
		if err := txn.Delete(ok); err != nil {
			it.Close()
			return 0, err
		}
		dk := dataKey(stream, ts, n, seq)
		item, err := txn.Get(dk)
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue // deleted by a purge: the origin entry was left behind
		} else if err != nil {
			it.Close()
			return 0, err
		}
		var fields map[string]string
		if err := item.Value(func(v []byte) (err error) {
			size += len(v)
			fields, err = decodeFields(v)
			return err
		}); err != nil {
			it.Close()
			return 0, fmt.Errorf("record %x: %w", dk, err)
		}
		if err := txn.Delete(dk); err != nil {
			it.Close()
			return 0, err
		}
		if _, ok := byStream[stream]; !ok {
			streams = append(streams, stream)
		}
		byStream[stream] = append(byStream[stream], blockRec{id: idOf(dk), fields: fields})
		count++
	}
	if !it.Valid() || beUint64(it.Item().Key()[5:]) > head {
		last = head // every row up to head is read
	}
	it.Close()
	r := round{first: after + 1, last: last}
	for _, stream := range streams {
		st, _ := s.cfg.Stream(stream)
		recs := byStream[stream]
		for _, rec := range recs {
			for _, f := range st.IndexedFields {
				if v, ok := rec.fields[f]; ok {
					if err := txn.Delete(append(indexPrefix(stream, f, v), rec.id[:]...)); err != nil {
						return 0, err
					}
				}
			}
		}
		blocks, err := putBlocks(txn, stream, n, recs, st.IndexedFields)
		if err != nil {
			return 0, err
		}
		r.blocks = append(r.blocks, blocks...)
	}
	if err := r.put(txn, n); err != nil {
		return 0, err
	}
	return count, s.commitSeal(txn, origin, n, last)
}

// commitSeal commits a seal step that covers origin up to last, and
// shrinks the rows' spans to the rows left, under spanMu (see rows.go).
func (s *LogStore) commitSeal(txn *badger.Txn, origin string, n uint32, last uint64) error {
	s.spanMu.Lock()
	defer s.spanMu.Unlock()
	if err := txn.Commit(); err != nil {
		return err
	}
	s.originsMu.Lock()
	s.sealed[origin] = last
	if last >= s.heads[origin] {
		delete(s.hotSince, origin)
	}
	s.originsMu.Unlock()
	s.sealedUpTo(n, last)
	return nil
}

// putBlocks writes recs, of one stream and origin n, as new blocks with
// their index entries, cut by blockLen; it sorts recs.
func putBlocks(txn *badger.Txn, stream string, n uint32, recs []blockRec, indexed []string) ([]roundBlock, error) {
	slices.SortFunc(recs, func(a, b blockRec) int { return compareIDs(a.id, b.id) })
	var out []roundBlock
	for len(recs) > 0 {
		k := blockLen(len(recs), func(i int) uint64 { return recs[i].id.ts() - recs[0].id.ts() })
		ref, err := putBlock(txn, stream, n, recs[:k], indexed)
		if err != nil {
			return nil, err
		}
		out = append(out, roundBlock{stream, ref})
		recs = recs[k:]
	}
	return out, nil
}

// blockLen is how many of n records sorted by time the next block takes:
// up to maxBlockRecords, spanning at most maxBlockSpan (span(i) is record
// i's time after the first's).
func blockLen(n int, span func(i int) uint64) int {
	k := 1
	for k < n && k < maxBlockRecords && span(k) <= maxBlockSpan {
		k++
	}
	return k
}

// putBlock writes recs, sorted and of origin n, as a new block with its
// index entries.
func putBlock(txn *badger.Txn, stream string, n uint32, recs []blockRec, indexed []string) (blockRef, error) {
	ref := blockRef{min: recs[0].id, maxTs: recs[len(recs)-1].id.ts()}
	if err := txn.Set(blockKey(stream, ref), encodeBlock(n, recs)); err != nil {
		return ref, err
	}
	return ref, indexBlock(txn.Set, stream, ref, recs, indexed, nil)
}

// indexBlock calls set with the index entries of the block ref holding
// recs, for the indexed fields, the values in skip excepted.
func indexBlock(set func(k, v []byte) error, stream string, ref blockRef, recs []blockRec, indexed []string, skip map[string]map[string]bool) error {
	for _, f := range indexed {
		seen := map[string]bool{}
		for _, rec := range recs {
			v, ok := rec.fields[f]
			if !ok || seen[v] || skip[f][v] {
				continue
			}
			seen[v] = true
			if err := set(append(blockIndexPrefix(stream, f, v), ref.bytes()...), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseOriginValue(v []byte) (string, uint64, error) {
	if len(v) < 9 || v[len(v)-9] != 0 {
		return "", 0, errCorrupt
	}
	return string(v[:len(v)-9]), beUint64(v[len(v)-8:]), nil
}

func compareIDs(a, b recordID) int { return bytes.Compare(a[:], b[:]) }
