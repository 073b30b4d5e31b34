package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	flowg "github.com/flowg-server/flowg-server"
)

// blockWorld is a stream whose records are in blocks of two origins that
// overlap in time, cut by count and by span, and in rows beside them;
// model holds every record, in time order (timestamps are distinct, so
// time order is ID order).
type blockWorld struct {
	s     *Store
	model []flowg.Record
	byN   map[string]flowg.Record
}

var blockWords = []string{"quick", "brown", "fox", "lazy", "dog", "jumps", "over", "the"}

func blockRecord(rng *rand.Rand, i int, at time.Time) flowg.Record {
	f := map[string]string{
		"n":     strconv.Itoa(i),
		"level": []string{"info", "info", "warn", "error"}[rng.IntN(4)],
		"msg":   blockWords[rng.IntN(8)] + " " + blockWords[rng.IntN(8)] + " " + strconv.Itoa(rng.IntN(1000)),
	}
	if rng.IntN(5) > 0 {
		f["host"] = fmt.Sprintf("h%d", rng.IntN(300)) // more than a dictionary holds
	}
	if rng.IntN(2) == 0 {
		f["timestamp"] = at.UTC().Format(time.RFC3339Nano)
	}
	return flowg.Record{Timestamp: at, Fields: f}
}

// newBlockWorld: 14,000 local records over 3.5 hours, 6,000 of another
// origin over the same hours, sealed; then 3,000 local rows among them.
func newBlockWorld(t *testing.T, seed uint64) *blockWorld {
	ctx := context.Background()
	w := &blockWorld{s: openNode(t, "blocks")}
	if err := w.s.Logs.PutSettings(ctx, "app", flowg.StreamSettings{IndexedFields: []string{"level"}}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	times := rng.Perm(23000) // distinct slots of 550 ms, in random order
	at := func(i int) time.Time { return t0.Add(time.Duration(times[i]) * 550 * time.Millisecond) }
	// Requests of 1,000 go straight into blocks, of 100 are rows.
	local := func(from, to, batch int) {
		for lo := from; lo < to; lo += batch {
			var recs []flowg.Record
			for i := lo; i < min(lo+batch, to); i++ {
				recs = append(recs, blockRecord(rng, i, at(i)))
			}
			if err := w.s.Logs.Append(ctx, "app", recs); err != nil {
				t.Fatal(err)
			}
			w.model = append(w.model, recs...)
		}
	}
	for lo := 0; lo < 14000; lo += 2000 {
		local(lo, lo+1000, 1000)
		local(lo+1000, lo+2000, 100)
	}
	var repl []flowg.ReplRecord
	for i := 14000; i < 20000; i++ {
		r := blockRecord(rng, i, at(i))
		repl = append(repl, flowg.ReplRecord{Stream: "app", TS: tsOf(r.Timestamp), Seq: uint64(i - 13999), Value: encodeFields(r.Fields)})
		w.model = append(w.model, r)
	}
	if _, err := w.s.Logs.ApplyOrigin(ctx, "peer", repl, 6001); err != nil { // the last one deleted
		t.Fatal(err)
	}
	if err := w.s.Logs.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	local(20000, 21500, 100)
	local(21500, 22500, 1000)
	local(22500, 23000, 100)
	slices.SortFunc(w.model, func(a, b flowg.Record) int { return a.Timestamp.Compare(b.Timestamp) })
	return w
}

func (w *blockWorld) blocks(t *testing.T) (n int) {
	t.Helper()
	if err := w.s.Logs.eachBlock("app", []string{}, func(*block) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

var blockFilters = []string{
	``, `level = "error"`, `host = "h17"`, `msg has "lazy dog"`, `n ~= "7$"`,
	`level = "warn" and msg has "fox"`, `not level = "info"`, `host = "nope"`, `msg contains "ck f"`,
	`level = "error" and host = "h3"`, `timestamp ~= "T01:"`,
}

// TestBlocks_AgreeWithModel pages, scans and reads newest first through
// windows that cut blocks, with every kind of filter (indexed, skipped by
// blooms, neither), and checks each answer against the records written.
func TestBlocks_AgreeWithModel(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(2) {
		w := newBlockWorld(t, seed)
		if n := w.blocks(t); n < 6 {
			t.Fatalf("%d blocks; want them cut by count and by span", n)
		}
		if w.s.Logs.hotRows() != 2000 {
			t.Fatalf("%d rows not sealed, want 2000", w.s.Logs.hotRows())
		}
		rng := rand.New(rand.NewPCG(seed, 11))
		for i := range 60 {
			q := flowg.Query{Stream: "app", Filter: mustFilter(t, blockFilters[i%len(blockFilters)]), Ascending: rng.IntN(2) == 0, Limit: 1 + rng.IntN(700)}
			if rng.IntN(4) > 0 {
				q.From = t0.Add(time.Duration(rng.Int64N(int64(4 * time.Hour))))
				q.To = q.From.Add(time.Duration(rng.Int64N(int64(2 * time.Hour))))
			}
			var want []string
			for _, r := range w.model {
				if (q.From.IsZero() || !r.Timestamp.Before(q.From)) && (q.To.IsZero() || r.Timestamp.Before(q.To)) && q.Filter.Match(r.Fields) {
					want = append(want, r.Fields["n"])
				}
			}
			if !q.Ascending {
				slices.Reverse(want)
			}
			var got []string
			for pq := q; ; {
				p, err := w.s.Logs.Query(ctx, pq)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range p.Records {
					got = append(got, r.Fields["n"])
					if r.Fields["n"] != "" && !r.Timestamp.Equal(w.find(r.Fields["n"]).Timestamp) {
						t.Fatalf("record %s at %v", r.Fields["n"], r.Timestamp)
					}
				}
				if p.NextCursor == "" {
					break
				}
				pq.Cursor = p.NextCursor
			}
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d, %q %v..%v ascending=%v limit %d: %d records, want %d", seed, q.Filter, q.From, q.To, q.Ascending, q.Limit, len(got), len(want))
			}
			// Scan in parts: the same set.
			var mu sync.Mutex
			var scanned []string
			_, err := w.s.Logs.Scan(ctx, q, flowg.ScanOptions{MaxScan: 1e6, Workers: 1 + rng.IntN(4), Fields: []string{"n"}}, func(_ int, _ time.Time, f map[string]string) error {
				mu.Lock()
				scanned = append(scanned, strings.Clone(f["n"]))
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(scanned)
			sorted := slices.Sorted(slices.Values(want))
			if !slices.Equal(scanned, sorted) {
				t.Fatalf("seed %d, scan of %q %v..%v: %d records, want %d", seed, q.Filter, q.From, q.To, len(scanned), len(sorted))
			}
			// In batches (blocks) and one by one (rows): the same set, with
			// their times and dictionary codes.
			var batched []string
			visit := func(_ int, ts time.Time, f map[string]string) error {
				mu.Lock()
				defer mu.Unlock()
				batched = append(batched, strings.Clone(f["n"]))
				return nil
			}
			opt := flowg.ScanOptions{MaxScan: 1e6, Workers: 1 + rng.IntN(3), Fields: []string{"n", "level"}, VisitBatch: func(_ int, b flowg.Batch) error {
				mu.Lock()
				defer mu.Unlock()
				vals, codes, ok := b.Dict("level")
				if !ok {
					return errors.New("level is not a dictionary")
				}
				for i := range b.Len() {
					n, _ := b.Value("n", i)
					r := w.find(n)
					level := ""
					if codes[i] > 0 {
						level = vals[codes[i]-1]
					}
					if b.UnixNano(i) != r.Timestamp.UnixNano() || level != r.Fields["level"] {
						return fmt.Errorf("record %s: %v %q, want %v %q", n, b.UnixNano(i), level, r.Timestamp, r.Fields["level"])
					}
					batched = append(batched, strings.Clone(n))
				}
				return nil
			}}
			if _, err := w.s.Logs.Scan(ctx, q, opt, visit); err != nil {
				t.Fatal(err)
			}
			slices.Sort(batched)
			if !slices.Equal(batched, sorted) {
				t.Fatalf("seed %d, batches of %q %v..%v: %d records, want %d", seed, q.Filter, q.From, q.To, len(batched), len(sorted))
			}
			// The newest k.
			k := 1 + rng.IntN(50)
			var newest []string
			_, err = w.s.Logs.Scan(ctx, q, flowg.ScanOptions{MaxScan: 1e6, Workers: 2, Newest: k, AllFields: true}, func(_ int, _ time.Time, f map[string]string) error {
				newest = append(newest, strings.Clone(f["n"]))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			wantNewest := want
			if q.Ascending {
				wantNewest = slices.Clone(want)
				slices.Reverse(wantNewest)
			}
			wantNewest = wantNewest[:min(k, len(wantNewest))]
			if !slices.Equal(newest, wantNewest) {
				t.Fatalf("seed %d, newest %d of %q: %v, want %v", seed, k, q.Filter, newest, wantNewest)
			}
		}
	}
}

func (w *blockWorld) find(n string) flowg.Record {
	if w.byN == nil {
		w.byN = map[string]flowg.Record{}
		for _, r := range w.model {
			w.byN[r.Fields["n"]] = r
		}
	}
	return w.byN[n]
}

// TestBlocks_NewestReadsFewBlocks: a page of the newest records, or of
// an indexed value, reads the blocks at the end of the stream, not all of
// them.
func TestBlocks_NewestReadsFewBlocks(t *testing.T) {
	ctx := context.Background()
	s := openNode(t, "few")
	if err := s.Logs.PutSettings(ctx, "app", flowg.StreamSettings{IndexedFields: []string{"level"}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		appendN(t, s, "app", 10000) // in time order, three times over
	}
	if err := s.Logs.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{``, `level = "error"`} {
		d0 := blocksDecoded.Load()
		p, err := s.Logs.Query(ctx, flowg.Query{Stream: "app", Filter: mustFilter(t, f)})
		if err != nil || len(p.Records) != 100 {
			t.Fatalf("%q: %d records: %v", f, len(p.Records), err)
		}
		if n := blocksDecoded.Load() - d0; n > 6 {
			t.Fatalf("%q: the newest 100 decoded %d blocks", f, n)
		}
	}
}

// TestBlocks_RetentionExact: retention by age and by size cuts blocks at
// the exact record, and the usage stays the sum of what is left.
func TestBlocks_RetentionExact(t *testing.T) {
	ctx := context.Background()
	w := newBlockWorld(t, 3)
	cut := t0.Add(97*time.Minute + 13*time.Second + 1) // inside a block
	st := flowg.StreamSettings{IndexedFields: []string{"level"}, RetentionTime: time.Hour}
	if err := w.s.Logs.PutSettings(ctx, "app", st); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.Logs.ApplyRetention(ctx, cut.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	i, _ := slices.BinarySearchFunc(w.model, cut, func(r flowg.Record, t time.Time) int { return r.Timestamp.Compare(t) })
	w.model = w.model[i:]
	w.checkAll(t)
	// By size: keep the newest records that fit in 1 MB.
	st.RetentionTime, st.RetentionSize = 0, 1_000_000
	if err := w.s.Logs.PutSettings(ctx, "app", st); err != nil {
		t.Fatal(err)
	}
	if _, err := w.s.Logs.ApplyRetention(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	var size int64
	i = len(w.model)
	for i > 0 && size+recordSize("app", w.model[i-1].Fields) <= 1_000_000 {
		i--
		size += recordSize("app", w.model[i].Fields)
	}
	w.model = w.model[i:]
	w.checkAll(t)
	if u := w.s.Logs.Usage("app"); u.Bytes != size {
		t.Fatalf("usage %d bytes, want %d", u.Bytes, size)
	}
}

// checkAll checks that the stream holds the model's records, its usage
// counts them, and level's index finds the same ones.
func (w *blockWorld) checkAll(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, f := range []string{``, `level = "error"`} {
		flt := mustFilter(t, f)
		p, err := w.s.Logs.Query(ctx, flowg.Query{Stream: "app", Ascending: true, Limit: 100_000, Filter: flt})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, r := range w.model {
			if flt.Match(r.Fields) {
				want = append(want, r.Fields["n"])
			}
		}
		if got := ns(p); !slices.Equal(got, want) {
			t.Fatalf("%q: %d records, want %d", f, len(got), len(want))
		}
	}
	u := w.s.Logs.Usage("app")
	var size int64
	for _, r := range w.model {
		size += recordSize("app", r.Fields)
	}
	if u.Records != int64(len(w.model)) || u.Bytes != size || !u.Oldest.Equal(w.model[0].Timestamp) {
		t.Fatalf("usage %+v, want %d records, %d bytes, oldest %v", u, len(w.model), size, w.model[0].Timestamp)
	}
}

// TestBlocks_Replication: another node reads the origins of a store whose
// records are partly sealed, in small batches, and ends up with the same
// records; a purge that reaches it takes them out of its blocks.
func TestBlocks_Replication(t *testing.T) {
	ctx := context.Background()
	w := newBlockWorld(t, 4)
	dst := openNode(t, "dst")
	for _, origin := range []string{w.s.Logs.Origin(), "peer"} {
		for after := uint64(0); after < w.s.Logs.Heads()[origin]; {
			recs, upTo, err := w.s.Logs.ReadOrigin(origin, after, 777, 64<<10)
			if err != nil {
				t.Fatal(err)
			}
			if upTo <= after {
				t.Fatalf("%s after %d: no progress", origin, after)
			}
			for i, r := range recs {
				if r.Seq <= after || r.Seq > upTo || i > 0 && r.Seq <= recs[i-1].Seq {
					t.Fatalf("%s after %d up to %d: record %d out of order", origin, after, upTo, r.Seq)
				}
			}
			if _, err := dst.Logs.ApplyOrigin(ctx, origin, recs, upTo); err != nil {
				t.Fatal(err)
			}
			after = upTo
		}
	}
	if err := dst.Logs.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	w2 := &blockWorld{s: dst, model: w.model}
	if err := dst.Logs.PutSettings(ctx, "app", flowg.StreamSettings{IndexedFields: []string{"level"}}); err != nil {
		t.Fatal(err)
	}
	w2.checkAll(t)
	// A purge on w reaches dst: its blocks lose every record.
	if err := w.s.Logs.Purge(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	es, _ := w.s.MetaEntries()
	if _, err := dst.ApplyMeta(es); err != nil {
		t.Fatal(err)
	}
	if n := w2.blocks(t); n != 0 {
		t.Fatalf("%d blocks left after the purge", n)
	}
	if u := dst.Logs.Usage("app"); u.Records != 0 {
		t.Fatalf("usage after the purge: %+v", u)
	}
}

// TestBlocks_IndexChange: a field indexed after its records were sealed
// is indexed in their blocks; one no longer indexed loses its entries.
func TestBlocks_IndexChange(t *testing.T) {
	ctx := context.Background()
	w := newBlockWorld(t, 6)
	if err := w.s.Logs.PutSettings(ctx, "app", flowg.StreamSettings{IndexedFields: []string{"host"}}); err != nil {
		t.Fatal(err)
	}
	q := flowg.Query{Stream: "app", Filter: mustFilter(t, `host = "h17"`), Limit: 10_000}
	p, err := w.s.Logs.plan(q)
	if err != nil || !p.viaIndex {
		t.Fatalf("host is not read through its index: %v", err)
	}
	page, err := w.s.Logs.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range w.model {
		if r.Fields["host"] == "h17" {
			want++
		}
	}
	if len(page.Records) != want || want == 0 {
		t.Fatalf("%d records of h17 through the index, want %d", len(page.Records), want)
	}
	n := 0
	err = w.s.Logs.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: blockIndexPrefix("app", "level")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil || n != 0 {
		t.Fatalf("%d index entries of level left (%v)", n, err)
	}
}

// TestBlocks_Reopen: the sealed marks and blocks survive a restart.
func TestBlocks_Reopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	appendN(t, s, "app", 10000)
	appendRange(t, s, "app", 10000, 10000, 1000) // straight into blocks
	if err := s.Logs.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	// Rows, a request straight into blocks, rows: the restart finds rows
	// on both sides of a round.
	appendRange(t, s, "app", 20000, 10, 10)
	appendRange(t, s, "app", 20010, 300, 300)
	appendRange(t, s, "app", 20310, 10, 10)
	s.Close()
	s = openTest(t, dir)
	if h := s.Logs.hotRows(); h != 20 {
		t.Fatalf("%d rows after a restart, want 20", h)
	}
	readAll := func() {
		t.Helper()
		recs, upTo, err := s.Logs.ReadOrigin(s.Logs.Origin(), 0, 100_000, 1<<30)
		if err != nil || len(recs) != 20320 || upTo != 20320 {
			t.Fatalf("read %d records up to %d: %v", len(recs), upTo, err)
		}
		for i, r := range recs {
			if r.Seq != uint64(i+1) {
				t.Fatalf("record %d has sequence %d", i, r.Seq)
			}
		}
	}
	readAll()
	if err := s.Logs.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if h := s.Logs.hotRows(); h != 0 || s.Logs.sealed[s.Logs.Origin()] != 20320 {
		t.Fatalf("%d rows, sealed up to %d after sealing", h, s.Logs.sealed[s.Logs.Origin()])
	}
	readAll()
}

func openNode(t *testing.T, id string) *Store {
	t.Helper()
	c := testConfig(t, t.TempDir())
	c.NodeID = id
	c.Logger = slog.New(slog.DiscardHandler)
	s, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPackedCodes: dictionary codes packed in every width read back, and
// a truncated or overlong packing is refused.
func TestPackedCodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, top := range []int{0, 1, 2, 3, 7, 8, 100, 255} {
		for _, n := range []int{1, 7, 8, 9, 500, 2048} {
			codes := make([]byte, n)
			for i := range codes {
				codes[i] = byte(rng.IntN(top + 1))
			}
			raw := append([]byte{1, 1, 'v'}, codes...) // one value, then the codes
			packed := packDict(raw, n)
			if !bytes.Equal(packed[:3], raw[:3]) {
				t.Fatalf("top %d n %d: the values changed", top, n)
			}
			got, err := unpackCodes(packed[3:], n)
			if err != nil || !bytes.Equal(got, codes) {
				t.Fatalf("top %d n %d: %v, codes differ", top, n, err)
			}
			if _, err := unpackCodes(packed[3:len(packed)-1], n); err == nil {
				t.Fatalf("top %d n %d: a truncated packing read", top, n)
			}
			if _, err := unpackCodes(append(packed[3:], 0), n); err == nil {
				t.Fatalf("top %d n %d: an overlong packing read", top, n)
			}
		}
	}
}

// TestBlockTimes: timestamps read back whatever the gaps between them
// (deltas in 4 bytes up to 4.29 s, in 8 past it).
func TestBlockTimes(t *testing.T) {
	for _, gap := range []uint64{0, 1, 43_000_000, 1<<32 - 1, 1 << 32, 5_000_000_000} {
		var recs []blockRec
		for i := range 100 {
			recs = append(recs, blockRec{id: newID(tsOf(t0)+uint64(i)*gap, 1, uint64(i+1)), fields: map[string]string{"n": fmt.Sprint(i)}})
		}
		h, err := parseHeader(encodeBlock(1, recs))
		if err != nil {
			t.Fatal(err)
		}
		blk, err := decodeBlock(blockRef{}, h, nil, true, false)
		if err != nil {
			t.Fatalf("gap %d: %v", gap, err)
		}
		for i, r := range recs {
			if blk.id(i) != r.id {
				t.Fatalf("gap %d: record %d has ID %x, want %x", gap, i, blk.id(i), r.id)
			}
		}
	}
}

// TestBlockFormat1: a block of the earlier format (timestamps as varint
// deltas) still reads.
func TestBlockFormat1(t *testing.T) {
	var recs []blockRec
	for i := range 300 {
		recs = append(recs, blockRec{id: newID(tsOf(t0)+uint64(i*i)*1_000_000, 1, uint64(i+1)), fields: map[string]string{"level": []string{"info", "error"}[i%2], "n": fmt.Sprint(i)}})
	}
	v := encodeBlock(1, recs)
	h, err := parseHeader(v)
	if err != nil {
		t.Fatal(err)
	}
	// The same block in format 1: its times as uvarint deltas from 0.
	var tsRaw []byte
	prev := uint64(0)
	for _, r := range recs {
		tsRaw = binary.AppendUvarint(tsRaw, r.id.ts()-prev)
		prev = r.id.ts()
	}
	tl, w := binary.Uvarint(h.ids)
	tsZ := zstdEncoder.EncodeAll(tsRaw, nil)
	ids := append(binary.AppendUvarint(nil, uint64(len(tsZ))), tsZ...)
	ids = append(ids, h.ids[w+int(tl):]...)
	datas := 0
	for _, c := range h.cols {
		datas += len(c.data)
	}
	at := 1 + uvarintLen(1) + uvarintLen(uint64(len(recs)))
	idsAt := len(v) - datas - len(h.ids)
	old := []byte{1}
	old = binary.AppendUvarint(old, 1)
	old = binary.AppendUvarint(old, uint64(len(recs)))
	old = binary.AppendUvarint(old, uint64(len(ids)))
	old = append(old, v[at+uvarintLen(uint64(len(h.ids))):idsAt]...)
	old = append(append(old, ids...), v[idsAt+len(h.ids):]...)
	if h, err = parseHeader(old); err != nil || h.format != 1 {
		t.Fatal(err, h.format)
	}
	blk, err := decodeBlock(blockRef{}, h, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for i, r := range recs {
		if blk.fill(fields, blk.allColumns(), i); blk.id(i) != r.id || !maps.Equal(fields, r.fields) {
			t.Fatalf("record %d: %x %v, want %x %v", i, blk.id(i), fields, r.id, r.fields)
		}
	}
}

// TestCodesAbove: the word-at-a-time check agrees with a byte loop.
func TestCodesAbove(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for range 2000 {
		k := rng.IntN(256)
		codes := make([]byte, rng.IntN(40))
		for i := range codes {
			codes[i] = byte(rng.IntN(k + 1))
		}
		if len(codes) > 0 && rng.IntN(2) == 0 {
			codes[rng.IntN(len(codes))] = byte(rng.IntN(256))
		}
		want := false
		for _, c := range codes {
			want = want || int(c) > k
		}
		if got := codesAbove(codes, k); got != want {
			t.Fatalf("codesAbove(%v, %d) = %v", codes, k, got)
		}
	}
}

// TestBlocks_ApplyStraightIntoBlocks: a replicated batch with enough
// records of each stream goes straight into blocks, beside rows of the
// same origin applied before and after it; relayed on, restarted and
// sealed, the origin's records read back once each, in order.
func TestBlocks_ApplyStraightIntoBlocks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	batch := func(from, to int) []flowg.ReplRecord {
		var out []flowg.ReplRecord
		for i := from; i <= to; i++ {
			r := rec(i, "level", "info")
			out = append(out, flowg.ReplRecord{Stream: "app", TS: tsOf(r.Timestamp), Seq: uint64(i), Value: encodeFields(r.Fields)})
		}
		return out
	}
	for _, b := range [][2]int{{1, 50}, {51, 650}, {651, 700}} {
		if _, err := s.Logs.ApplyOrigin(ctx, "peer", batch(b[0], b[1]), uint64(b[1])); err != nil {
			t.Fatal(err)
		}
	}
	if h := s.Logs.hotRows(); h != 100 {
		t.Fatalf("%d rows, want 100 (600 straight into blocks)", h)
	}
	readAll := func() {
		t.Helper()
		var got []uint64
		for after := uint64(0); after < 700; {
			recs, upTo, err := s.Logs.ReadOrigin("peer", after, 111, 1<<20)
			if err != nil || upTo <= after {
				t.Fatalf("after %d: up to %d, %v", after, upTo, err)
			}
			for _, r := range recs {
				got = append(got, r.Seq)
			}
			after = upTo
		}
		if len(got) != 700 || !slices.IsSorted(got) || got[0] != 1 || got[699] != 700 {
			t.Fatalf("read %d records: %v...", len(got), got[:min(5, len(got))])
		}
	}
	readAll()
	s.Close()
	s = openTest(t, dir)
	if h := s.Logs.hotRows(); h != 100 {
		t.Fatalf("%d rows after a restart, want 100", h)
	}
	readAll()
	if err := s.Logs.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if h := s.Logs.hotRows(); h != 0 || s.Logs.sealed["peer"] != 700 {
		t.Fatalf("%d rows, sealed up to %d after sealing", h, s.Logs.sealed["peer"])
	}
	readAll()
}

// TestBlockCorruption: a block value with bytes flipped, cut or grown
// decodes or fails with an error, never panics.
func TestBlockCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var recs []blockRec
	for i := range 700 {
		recs = append(recs, blockRec{id: newID(tsOf(t0)+uint64(i)*uint64(rng.IntN(9e9)), 1, uint64(i+1)), fields: map[string]string{
			"level": []string{"info", "warn", "error"}[rng.IntN(3)], "host": fmt.Sprintf("h%d", rng.IntN(40)),
			"msg": fmt.Sprintf("request %d took %d ms", i, rng.IntN(999)), "timestamp": timeOf(tsOf(t0) + uint64(i)).Format(time.RFC3339Nano),
		}})
	}
	slices.SortFunc(recs, func(a, b blockRec) int { return compareIDs(a.id, b.id) })
	good := encodeBlock(1, recs)
	refused, read := 0, 0
	for range 3000 {
		v := slices.Clone(good)
		switch rng.IntN(3) {
		case 0:
			for range 1 + rng.IntN(4) {
				v[rng.IntN(len(v))] ^= byte(1 + rng.IntN(255))
			}
		case 1:
			v = v[:rng.IntN(len(v))]
		default:
			v = append(v, byte(rng.IntN(256)))
		}
		h, err := parseHeader(v)
		if err != nil {
			refused++
			continue
		}
		blk, err := decodeBlock(blockRef{}, h, nil, true, rng.IntN(2) == 0)
		if err != nil {
			refused++
			continue
		}
		if blk.loadIDs() != nil {
			refused++
			continue
		}
		read++
		fields := map[string]string{}
		for i := range blk.len() {
			blk.fill(fields, blk.allColumns(), i)
		}
	}
	// Both ways are taken: most changes are refused, some (a flip in a
	// bloom, for one) still read.
	if refused == 0 || read == 0 {
		t.Fatalf("%d corrupted values refused, %d read", refused, read)
	}
	t.Logf("%d corrupted values refused, %d read", refused, read)
}
