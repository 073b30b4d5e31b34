package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"

	"github.com/flowg-server/flowg-server/filter"
)

// Blocks are the sealed layout of a stream's records: up to
// maxBlockRecords records of one origin, spanning at most maxBlockSpan, in
// ID order, stored column by column under one key
//
//	'b' stream 0x00 minID(20) maxTs(8)
//
// minID is the first record's ID when the block was made and maxTs the
// last one's timestamp; retention may later take records out of a block
// without renaming it, so the two stay bounds of what it holds. The value
// is a header, which a reader decodes without touching the columns:
//
//	format(1) uvarint(origin) uvarint(records) uvarint(len ids)
//	uvarint(columns), then per column:
//	  uvarint(len name) name kind(1) uvarint(len data) uvarint(len bloom) bloom
//
// followed by the IDs, uvarint(len t) t s where t is the zstd-compressed
// timestamps and s the zstd-compressed sequence deltas (zigzag varints),
// apart so that a question reads times alone, and each column's
// zstd-compressed data. The timestamps are, in format 2, the first one
// (8 bytes little-endian), a width w (4 or 8), then each next one's delta
// in w bytes little-endian: a question of times reads them by the million,
// and fixed widths decode several times faster than varints; in format 1
// (blocks of an earlier version, still read), the deltas as uvarints from
// 0. A column
// is one of
//
//   - colDict: up to 255 distinct values: uvarint(n), n values
//     (uvarint(len) bytes), then a byte a record (0: absent, i: the i-th);
//   - colPlain: a uvarint a record (0: absent, else length+1), then the
//     values one after the other;
//   - colTime: the record's own timestamp as RFC 3339 in UTC with
//     nanoseconds, which ingest often keeps as a field: a byte a record
//     (0: absent, 1: present).
//   - colPacked: a colDict whose codes are bit-packed instead of
//     compressed: uvarint(n), n values (uvarint(len) bytes), width(1),
//     then the codes in width bits each, least significant bit first
//     (width 0: one byte, the code of every record), not compressed. A
//     question reads dictionary columns by the thousand, and unpacking
//     them costs a fraction of decompressing them (zstd's tables are
//     rebuilt for every column); the writer takes it when it costs at
//     most a quarter of a byte a record more than compressing.
//
// The bloom is a filter of the column's whole values and of their words
// (filter.EachWord): a query for `f = "v"` or `f has "w1 w2"` skips a
// block whose bloom lacks them without decompressing anything.
//
// Why by hand: no library here lays out records as columns in a Badger
// value; the compression (zstd), the hash (xxhash) are libraries.
const (
	blockFormat     = 2
	maxBlockRecords = 2048
	maxBlockSpan    = uint64(time.Hour)
	maxBlockBytes   = 8 << 20 // of records' encoded values

	colDict   = 1
	colPlain  = 2
	colTime   = 3
	colPacked = 4

	prefixBlock      = 'b'
	prefixBlockIndex = 'y'
	blockRefLen      = idLen + 8
)

var (
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(256<<20))
)

// blockRef names a block within its stream.
type blockRef struct {
	min   recordID
	maxTs uint64
}

func (r blockRef) bytes() []byte {
	b := make([]byte, 0, blockRefLen)
	b = append(b, r.min[:]...)
	return binary.BigEndian.AppendUint64(b, r.maxTs)
}

func refOf(key []byte) (r blockRef) {
	tail := key[len(key)-blockRefLen:]
	copy(r.min[:], tail)
	r.maxTs = beUint64(tail[idLen:])
	return r
}

// blockPrefix is 'b' stream 0x00.
func blockPrefix(stream string) []byte {
	b := make([]byte, 0, len(stream)+2+blockRefLen)
	b = append(b, prefixBlock)
	b = append(b, stream...)
	return append(b, 0)
}

func blockKey(stream string, r blockRef) []byte { return append(blockPrefix(stream), r.bytes()...) }

// blockIndexPrefix is 'y' stream 0x00, optionally followed by one field,
// or a field and its value: an indexed field's value in a block is
//
//	'y' stream 0x00 uvarint(len f) f uvarint(len v) v blockRef(28)
func blockIndexPrefix(stream string, fieldValue ...string) []byte {
	b := indexPrefix(stream, fieldValue...)
	b[0] = prefixBlockIndex
	return b
}

// blockRec is a record on its way into a block.
type blockRec struct {
	id     recordID
	fields map[string]string
}

// encodeBlock lays out recs, sorted by ID and all of one origin, as a
// block value.
func encodeBlock(origin uint32, recs []blockRec) []byte {
	var names []string
	seen := map[string]bool{}
	for _, r := range recs {
		for k := range r.fields {
			if !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
	}
	slices.Sort(names)
	var seqRaw []byte
	var prevSeq uint64
	width := 4
	for i, r := range recs {
		seq := r.id.seq()
		seqRaw = binary.AppendVarint(seqRaw, int64(seq-prevSeq))
		prevSeq = seq
		if i > 0 && r.id.ts()-recs[i-1].id.ts() > math.MaxUint32 {
			width = 8
		}
	}
	tsRaw := binary.LittleEndian.AppendUint64(nil, recs[0].id.ts())
	tsRaw = append(tsRaw, byte(width))
	for i := 1; i < len(recs); i++ {
		if d := recs[i].id.ts() - recs[i-1].id.ts(); width == 4 {
			tsRaw = binary.LittleEndian.AppendUint32(tsRaw, uint32(d))
		} else {
			tsRaw = binary.LittleEndian.AppendUint64(tsRaw, d)
		}
	}
	tsZ := zstdEncoder.EncodeAll(tsRaw, nil)
	ids := binary.AppendUvarint(nil, uint64(len(tsZ)))
	ids = append(append(ids, tsZ...), zstdEncoder.EncodeAll(seqRaw, nil)...)
	head := []byte{blockFormat}
	head = binary.AppendUvarint(head, uint64(origin))
	head = binary.AppendUvarint(head, uint64(len(recs)))
	head = binary.AppendUvarint(head, uint64(len(ids)))
	head = binary.AppendUvarint(head, uint64(len(names)))
	datas := make([][]byte, len(names))
	for i, name := range names {
		kind, raw, bloom := encodeColumn(name, recs)
		datas[i] = zstdEncoder.EncodeAll(raw, nil)
		if kind == colDict {
			if packed := packDict(raw, len(recs)); len(packed) <= len(datas[i])+len(recs)/4 {
				kind, datas[i] = colPacked, packed
			}
		}
		head = binary.AppendUvarint(head, uint64(len(name)))
		head = append(head, name...)
		head = append(head, kind)
		head = binary.AppendUvarint(head, uint64(len(datas[i])))
		head = binary.AppendUvarint(head, uint64(len(bloom)))
		head = append(head, bloom...)
	}
	out := append(head, ids...)
	for _, d := range datas {
		out = append(out, d...)
	}
	return out
}

// encodeColumn lays out the values of field name, picking its kind.
func encodeColumn(name string, recs []blockRec) (kind byte, raw, bloom []byte) {
	// The record's own timestamp?
	isTime := true
	var scratch []byte
	for _, r := range recs {
		v, ok := r.fields[name]
		if !ok {
			continue
		}
		scratch = timeOf(r.id.ts()).AppendFormat(scratch[:0], time.RFC3339Nano)
		if string(scratch) != v {
			isTime = false
			break
		}
	}
	if isTime {
		raw = make([]byte, len(recs))
		for i, r := range recs {
			if _, ok := r.fields[name]; ok {
				raw[i] = 1
			}
		}
		return colTime, raw, nil
	}
	distinct := map[string]int{}
	var order []string
	for _, r := range recs {
		v, ok := r.fields[name]
		if !ok {
			continue
		}
		if _, ok := distinct[v]; !ok {
			distinct[v] = len(order)
			order = append(order, v)
		}
	}
	bloom = makeBloom(order)
	if len(order) <= 255 {
		raw = binary.AppendUvarint(raw, uint64(len(order)))
		for _, v := range order {
			raw = binary.AppendUvarint(raw, uint64(len(v)))
			raw = append(raw, v...)
		}
		for _, r := range recs {
			if v, ok := r.fields[name]; ok {
				raw = append(raw, byte(distinct[v]+1))
			} else {
				raw = append(raw, 0)
			}
		}
		return colDict, raw, bloom
	}
	size := 0
	for _, r := range recs {
		v, ok := r.fields[name]
		if ok {
			raw = binary.AppendUvarint(raw, uint64(len(v))+1)
			size += len(v)
		} else {
			raw = append(raw, 0)
		}
	}
	raw = slices.Grow(raw, size)
	for _, r := range recs {
		raw = append(raw, r.fields[name]...)
	}
	return colPlain, raw, bloom
}

// packDict turns the layout of a colDict column (values, then a byte a
// record) into that of colPacked.
func packDict(raw []byte, n int) []byte {
	codes := raw[len(raw)-n:]
	out := slices.Clone(raw[:len(raw)-n])
	top, same := byte(0), true
	for _, c := range codes {
		top = max(top, c)
		same = same && c == codes[0]
	}
	if same {
		return append(out, 0, codes[0])
	}
	width := bits.Len8(top)
	out = append(out, byte(width))
	var acc uint64
	filled := 0
	for _, c := range codes {
		acc |= uint64(c) << filled
		if filled += width; filled >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			filled -= 8
		}
	}
	if filled > 0 {
		out = append(out, byte(acc))
	}
	return out
}

// codesAbove tells whether a code is above k, eight at a time while k is
// under 128: a byte over k shows in the high bit of byte + 127 - k (no
// carry for bytes under 128), or of the byte itself.
func codesAbove(codes []byte, k int) bool {
	i := 0
	if k < 128 {
		const ones, highs = 0x0101010101010101, 0x8080808080808080
		add := ones * uint64(127-k)
		for ; i+8 <= len(codes); i += 8 {
			if x := binary.LittleEndian.Uint64(codes[i:]); (x+add|x)&highs != 0 {
				return true
			}
		}
	}
	for ; i < len(codes); i++ {
		if int(codes[i]) > k {
			return true
		}
	}
	return false
}

// unpackCodes reads n codes of a colPacked column.
func unpackCodes(data []byte, n int) ([]byte, error) {
	if len(data) < 1 {
		return nil, errCorrupt
	}
	width, data := int(data[0]), data[1:]
	codes := make([]byte, n)
	if width == 0 {
		if len(data) != 1 {
			return nil, errCorrupt
		}
		for i := range codes {
			codes[i] = data[0]
		}
		return codes, nil
	}
	if width > 8 || len(data) != (n*width+7)/8 {
		return nil, errCorrupt
	}
	if width == 8 {
		copy(codes, data)
		return codes, nil
	}
	// Eight codes take width bytes: read them as one word.
	mask, w := byte(1)<<width-1, uint(width)
	var word [8]byte
	j := 0
	for g := 0; g+8 <= n; g += 8 {
		var v uint64
		if j+8 <= len(data) {
			v = binary.LittleEndian.Uint64(data[j:])
		} else {
			copy(word[:], data[j:])
			v = binary.LittleEndian.Uint64(word[:])
		}
		out := codes[g : g+8 : g+8]
		out[0] = byte(v) & mask
		out[1] = byte(v>>w) & mask
		out[2] = byte(v>>(2*w)) & mask
		out[3] = byte(v>>(3*w)) & mask
		out[4] = byte(v>>(4*w)) & mask
		out[5] = byte(v>>(5*w)) & mask
		out[6] = byte(v>>(6*w)) & mask
		out[7] = byte(v>>(7*w)) & mask
		j += width
	}
	for i := n &^ 7; i < n; i++ {
		bit := i * width
		v := uint16(data[bit>>3])
		if bit>>3+1 < len(data) {
			v |= uint16(data[bit>>3+1]) << 8
		}
		codes[i] = byte(v>>(bit&7)) & mask
	}
	return codes, nil
}

// Blooms: 8 bits a distinct token, 4 probes (about 2.4% false positives).

func valueHash(v string) uint64 { return xxhash.Sum64String(v) }

func wordHash(w string) uint64 { return xxhash.Sum64String(w) * 0x9e3779b97f4a7c15 }

func makeBloom(values []string) []byte {
	hashes := map[uint64]struct{}{}
	for _, v := range values {
		hashes[valueHash(v)] = struct{}{}
		filter.EachWord(v, func(w string) { hashes[wordHash(w)] = struct{}{} })
	}
	b := make([]byte, max(8, len(hashes)))
	for h := range hashes {
		bloomAdd(b, h)
	}
	return b
}

func bloomProbes(b []byte, h uint64, fn func(bit uint64) bool) bool {
	bits := uint64(len(b)) * 8
	h1, h2 := h, h>>32|h<<32
	for i := range uint64(4) {
		if !fn((h1 + i*h2) % bits) {
			return false
		}
	}
	return true
}

func bloomAdd(b []byte, h uint64) {
	bloomProbes(b, h, func(bit uint64) bool { b[bit/8] |= 1 << (bit % 8); return true })
}

func bloomHas(b []byte, h uint64) bool {
	return bloomProbes(b, h, func(bit uint64) bool { return b[bit/8]&(1<<(bit%8)) != 0 })
}

// blockHeader is a block's header, decoded.
type blockHeader struct {
	format byte
	origin uint32
	n      int
	ids    []byte // compressed
	cols   []colHeader
}

type colHeader struct {
	name  string
	kind  byte
	data  []byte // compressed
	bloom []byte
}

// parseHeader decodes the header of block value v; the slices in it point
// into v.
func parseHeader(v []byte) (h blockHeader, err error) {
	if len(v) == 0 || v[0] != 1 && v[0] != blockFormat {
		return h, fmt.Errorf("%w: block format", errCorrupt)
	}
	h.format = v[0]
	b := v[1:]
	uv := func() uint64 {
		x, w := binary.Uvarint(b)
		if w <= 0 {
			err = errCorrupt
			return 0
		}
		b = b[w:]
		return x
	}
	take := func(n uint64) []byte {
		if err != nil || n > uint64(len(b)) {
			err = errCorrupt
			return nil
		}
		out := b[:n:n]
		b = b[n:]
		return out
	}
	h.origin = uint32(uv())
	h.n = int(uv())
	idsLen := uv()
	ncols := uv()
	if err != nil || ncols > uint64(len(b)) || h.n > maxBlockRecords {
		return h, errCorrupt
	}
	h.cols = make([]colHeader, ncols)
	dataLens := make([]uint64, ncols)
	for i := range h.cols {
		c := &h.cols[i]
		c.name = string(take(uv()))
		kind := take(1)
		if err != nil {
			return h, err
		}
		c.kind = kind[0]
		dataLens[i] = uv()
		c.bloom = take(uv())
	}
	h.ids = take(idsLen)
	for i := range h.cols {
		h.cols[i].data = take(dataLens[i])
	}
	if err == nil && len(b) != 0 {
		err = fmt.Errorf("%w: %d trailing bytes in a block", errCorrupt, len(b))
	}
	return h, err
}

// mayHold reports whether the block can hold a record with field = value,
// or with the words in field: false only when its bloom says it cannot.
func (h *blockHeader) mayHold(eqs []filter.Equality, phrases []filter.Phrase) bool {
	for _, eq := range eqs {
		if c := h.col(eq.Field); c == nil || c.kind != colTime && !bloomHas(c.bloom, valueHash(eq.Value)) {
			return false
		}
	}
	for _, p := range phrases {
		c := h.col(p.Field)
		if c == nil {
			return false
		}
		for _, w := range p.Words {
			if c.kind != colTime && !bloomHas(c.bloom, wordHash(w)) {
				return false
			}
		}
	}
	return true
}

func (h *blockHeader) col(name string) *colHeader {
	for i := range h.cols {
		if h.cols[i].name == name {
			return &h.cols[i]
		}
	}
	return nil
}

// block is a decoded block: its IDs and the columns asked for, in memory
// of its own (the strings stay valid after the transaction).
type block struct {
	ref      blockRef
	format   byte
	origin   uint32
	n        int
	ts, seqs []uint64 // of each record, in ID order (see loadIDs)
	idsRaw   []byte   // compressed, until loadIDs
	seqsRaw  []byte   // the sequences' part of it, once the times are read
	cols     []column
}

// len is the number of records in the block.
func (b *block) len() int { return b.n }

// loadTimes decodes the records' timestamps.
func (b *block) loadTimes() error {
	if b.ts != nil || b.n == 0 {
		return nil
	}
	l, w := binary.Uvarint(b.idsRaw)
	if w <= 0 || l > uint64(len(b.idsRaw)-w) {
		return errCorrupt
	}
	raw, err := zstdDecoder.DecodeAll(b.idsRaw[w:w+int(l)], nil)
	if err != nil {
		return fmt.Errorf("%w: block times: %v", errCorrupt, err)
	}
	ts := make([]uint64, b.n)
	if b.format == 1 {
		var t uint64
		for i := range ts {
			d, w := binary.Uvarint(raw)
			if w <= 0 {
				return errCorrupt
			}
			raw, t = raw[w:], t+d
			ts[i] = t
		}
	} else {
		if len(raw) < 9 || raw[8] != 4 && raw[8] != 8 || len(raw) != 9+(b.n-1)*int(raw[8]) {
			return fmt.Errorf("%w: block times", errCorrupt)
		}
		t, width := binary.LittleEndian.Uint64(raw), int(raw[8])
		ts[0] = t
		if raw = raw[9:]; width == 4 {
			for i := 1; i < len(ts); i++ {
				t += uint64(binary.LittleEndian.Uint32(raw[4*(i-1):]))
				ts[i] = t
			}
		} else {
			for i := 1; i < len(ts); i++ {
				t += binary.LittleEndian.Uint64(raw[8*(i-1):])
				ts[i] = t
			}
		}
	}
	b.ts, b.seqsRaw = ts, b.idsRaw[w+int(l):]
	return nil
}

// loadIDs decodes the records' IDs: their timestamps and sequences.
func (b *block) loadIDs() error {
	if err := b.loadTimes(); err != nil || b.seqs != nil || b.n == 0 {
		return err
	}
	raw, err := zstdDecoder.DecodeAll(b.seqsRaw, nil)
	if err != nil {
		return fmt.Errorf("%w: block sequences: %v", errCorrupt, err)
	}
	seqs := make([]uint64, b.n)
	var seq uint64
	for i := range seqs {
		d, w := binary.Varint(raw)
		if w <= 0 {
			return errCorrupt
		}
		raw, seq = raw[w:], seq+uint64(d)
		seqs[i] = seq
	}
	b.seqs, b.idsRaw, b.seqsRaw = seqs, nil, nil
	return nil
}

// id is record i's ID.
func (b *block) id(i int) (id recordID) {
	putBE(id[:8], b.ts[i])
	binary.BigEndian.PutUint32(id[8:12], b.origin)
	putBE(id[12:], b.seqs[i])
	return id
}

type column struct {
	name  string
	kind  byte
	dict  []string
	codes []byte   // colDict, colTime
	vals  []string // colPlain
	has   []bool   // colPlain
}

// decodeBlock decodes the IDs of the block in v (later, in loadIDs, with
// lazyIDs) and the columns named in want (every column when all).
func decodeBlock(ref blockRef, h blockHeader, want []string, all, lazyIDs bool) (*block, error) {
	blk := &block{ref: ref, format: h.format, origin: h.origin, n: h.n, idsRaw: h.ids}
	if lazyIDs {
		blk.idsRaw = slices.Clone(h.ids) // h points into the database's buffers
	} else if err := blk.loadIDs(); err != nil {
		return nil, err
	}
	for _, c := range h.cols {
		if !all && !slices.Contains(want, c.name) {
			continue
		}
		col, err := decodeColumn(c, h.n)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.name, err)
		}
		blk.cols = append(blk.cols, col)
	}
	return blk, nil
}

func decodeColumn(c colHeader, n int) (column, error) {
	col := column{name: c.name, kind: c.kind}
	raw := c.data
	if c.kind == colPacked {
		col.kind = colDict // once unpacked; c.data is the database's buffer
	} else {
		var err error
		if raw, err = zstdDecoder.DecodeAll(c.data, nil); err != nil {
			return col, fmt.Errorf("%w: %v", errCorrupt, err)
		}
	}
	str := func(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
	switch c.kind {
	case colTime:
		if len(raw) != n {
			return col, errCorrupt
		}
		col.codes = raw
	case colDict, colPacked:
		k, w := binary.Uvarint(raw)
		if w <= 0 || k > 255 {
			return col, errCorrupt
		}
		raw = raw[w:]
		end := 0 // of the values
		for range k {
			l, w := binary.Uvarint(raw[end:])
			if w <= 0 || l > uint64(len(raw)-end-w) {
				return col, errCorrupt
			}
			end += w + int(l)
		}
		values := raw[:end]
		if raw = raw[end:]; c.kind == colPacked {
			values = slices.Clone(values)
			var err error
			if raw, err = unpackCodes(raw, n); err != nil {
				return col, err
			}
		}
		col.dict = make([]string, k)
		for i := range col.dict {
			l, w := binary.Uvarint(values)
			col.dict[i] = str(values[w : w+int(l)])
			values = values[w+int(l):]
		}
		if len(raw) != n {
			return col, errCorrupt
		}
		if codesAbove(raw, len(col.dict)) {
			return col, errCorrupt
		}
		col.codes = raw
	case colPlain:
		col.vals, col.has = make([]string, n), make([]bool, n)
		lens := make([]uint64, n)
		for i := range lens {
			l, w := binary.Uvarint(raw)
			if w <= 0 {
				return col, errCorrupt
			}
			lens[i], raw = l, raw[w:]
		}
		for i, l := range lens {
			if l == 0 {
				continue
			}
			if l-1 > uint64(len(raw)) {
				return col, errCorrupt
			}
			col.vals[i], col.has[i] = str(raw[:l-1]), true
			raw = raw[l-1:]
		}
		if len(raw) != 0 {
			return col, errCorrupt
		}
	default:
		return col, fmt.Errorf("%w: column kind %d", errCorrupt, c.kind)
	}
	return col, nil
}

// value returns row i's value of the column.
func (c *column) value(b *block, i int) (string, bool) {
	switch c.kind {
	case colDict:
		if code := c.codes[i]; code > 0 {
			return c.dict[code-1], true
		}
	case colPlain:
		return c.vals[i], c.has[i]
	case colTime:
		if c.codes[i] > 0 {
			return timeOf(b.ts[i]).Format(time.RFC3339Nano), true
		}
	}
	return "", false
}

// fields fills m (cleared first) with row i's values of the decoded
// columns.
func (b *block) fields(i int, m map[string]string) { b.fill(m, b.allColumns(), i) }

// fill fills m (cleared first) with row i's values of cols.
func (b *block) fill(m map[string]string, cols []*column, i int) {
	clear(m)
	for _, c := range cols {
		if v, ok := c.value(b, i); ok {
			m[c.name] = v
		}
	}
}

// allColumns returns every decoded column.
func (b *block) allColumns() []*column {
	out := make([]*column, len(b.cols))
	for i := range b.cols {
		out[i] = &b.cols[i]
	}
	return out
}

// columns returns the decoded columns named (those the block has).
func (b *block) columns(names []string) []*column {
	out := []*column{}
	for _, name := range names {
		if c := b.column(name); c != nil && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// search returns the first row whose ID is at or after id.
func (b *block) search(id recordID) int {
	return sort.Search(b.len(), func(i int) bool { return compareIDs(b.id(i), id) >= 0 })
}

// recordSize is what a record counts for in its stream's usage: its row's
// key and value, the same whether the record is in a row or a block.
func recordSize(stream string, fields map[string]string) int64 {
	n := uvarintLen(uint64(len(fields)))
	for k, v := range fields {
		n += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
	}
	return int64(len(stream) + 2 + idLen + n)
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// blockMatcher evaluates a filter on a block's rows from the columns it
// names. When they are at most two dictionary columns (level, service,
// status: the common case), the answer depends only on the rows' codes,
// so it is computed once per pair of codes and looked up after.
type blockMatcher struct {
	blk     *block
	f       *filter.Filter
	cols    []*column
	dicts   bool
	memo    []int8 // per code pair: 0 unknown, 1 no, 2 yes
	used    *[]int // the entries of memo set
	scratch map[string]string
}

// newBlockMatcher prepares f for blk; memo is scratch space of 65,536
// entries, used lists those set by the matcher before: it clears them.
func newBlockMatcher(blk *block, f *filter.Filter, names []string, memo []int8, used *[]int) *blockMatcher {
	m := &blockMatcher{blk: blk, f: f, cols: blk.columns(names), scratch: map[string]string{}}
	if f == nil {
		return m
	}
	m.dicts = len(m.cols) <= 2
	for _, c := range m.cols {
		m.dicts = m.dicts && c.kind == colDict
	}
	if m.dicts {
		m.memo = memo
		for _, k := range *used { // what the block before set
			m.memo[k] = 0
		}
		*used = (*used)[:0]
		m.used = used
	}
	return m
}

// all tells that every row matches: no filter, or one that names no
// column of the block and holds without them.
func (m *blockMatcher) all() bool {
	if m.f == nil {
		return true
	}
	if len(m.cols) > 0 {
		return false
	}
	clear(m.scratch)
	return m.f.Match(m.scratch)
}

// selectRows appends the rows lo..hi-1 that match to sel. On one
// dictionary column the filter is evaluated once per code, and the codes
// are read in a loop.
func (m *blockMatcher) selectRows(lo, hi int, sel []int32) []int32 {
	if m.f != nil && m.dicts && len(m.cols) == 1 {
		c := m.cols[0]
		var ok [256]int
		for code := range len(c.dict) + 1 {
			clear(m.scratch)
			if code > 0 {
				m.scratch[c.name] = c.dict[code-1]
			}
			if m.f.Match(m.scratch) {
				ok[code] = 1
			}
		}
		// Every row is written, and kept when it matches: no branch.
		k := len(sel)
		sel = slices.Grow(sel, hi-lo)[:k+hi-lo]
		for i, code := range c.codes[lo:hi] {
			sel[k] = int32(lo + i)
			k += ok[code]
		}
		return sel[:k]
	}
	for i := lo; i < hi; i++ {
		if m.match(i) {
			sel = append(sel, int32(i))
		}
	}
	return sel
}

func (m *blockMatcher) match(i int) bool {
	if m.f == nil {
		return true
	}
	key := 0
	if m.dicts {
		for _, c := range m.cols {
			key = key<<8 | int(c.codes[i])
		}
		if r := m.memo[key]; r != 0 {
			return r == 2
		}
	}
	m.blk.fill(m.scratch, m.cols, i)
	ok := m.f.Match(m.scratch)
	if m.dicts {
		m.memo[key] = 1
		if ok {
			m.memo[key] = 2
		}
		*m.used = append(*m.used, key)
	}
	return ok
}

// column returns the decoded column named, nil when there is none.
func (b *block) column(name string) *column {
	for c := range b.cols {
		if b.cols[c].name == name {
			return &b.cols[c]
		}
	}
	return nil
}

// blockBatch is a block's records in a window, or those of sel, as a
// flowg.Batch.
type blockBatch struct {
	blk    *block
	lo, hi int
	sel    []int32 // the rows, when not all of lo..hi
	err    error   // of loading the IDs
}

func (b *blockBatch) Len() int {
	if b.sel != nil {
		return len(b.sel)
	}
	return b.hi - b.lo
}

func (b *blockBatch) row(i int) int {
	if b.sel != nil {
		return int(b.sel[i])
	}
	return b.lo + i
}

func (b *blockBatch) UnixNano(i int) int64 {
	if err := b.blk.loadTimes(); err != nil {
		b.err = err // the scan fails with it
		return 0
	}
	return int64(b.blk.ts[b.row(i)])
}

func (b *blockBatch) Dict(field string) ([]string, []byte, bool) {
	c := b.blk.column(field)
	if c == nil {
		return nil, make([]byte, b.Len()), true // no record has it
	}
	if c.kind != colDict {
		return nil, nil, false
	}
	if b.sel == nil {
		return c.dict, c.codes[b.lo:b.hi], true
	}
	codes := make([]byte, len(b.sel))
	for i, r := range b.sel {
		codes[i] = c.codes[r]
	}
	return c.dict, codes, true
}

func (b *blockBatch) Value(field string, i int) (string, bool) {
	c := b.blk.column(field)
	if c == nil {
		return "", false
	}
	if c.kind == colTime {
		if err := b.blk.loadTimes(); err != nil {
			b.err = err
			return "", false
		}
	}
	return c.value(b.blk, b.row(i))
}
