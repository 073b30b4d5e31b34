package store

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
	"unsafe"

	flowg "github.com/flowg-server/flowg-server"
)

const (
	prefixData   = 'd'
	prefixIndex  = 'x'
	prefixUsage  = 's'
	prefixOrigin = 'o'
	keySeq       = "m/seq"
	keyFormat    = "m/format"
	keySelf      = "m/self"    // the origin of the records this database takes
	prefixDict   = "m/origin/" // origin → its 4-byte number here
	prefixMark   = "m/mark/"   // origin → the last sequence held
	// idLen is a record's place in its stream and its identity in the
	// cluster: ts(8), origin number(4), origin's sequence(8).
	idLen = 20
	// logFormat is the key layout of the log database.
	logFormat = "2"
)

// dataPrefix is 'd' stream 0x00.
func dataPrefix(stream string) []byte {
	b := make([]byte, 0, len(stream)+2+idLen)
	b = append(b, prefixData)
	b = append(b, stream...)
	return append(b, 0)
}

func dataKey(stream string, ts uint64, origin uint32, seq uint64) []byte {
	b := dataPrefix(stream)
	b = binary.BigEndian.AppendUint64(b, ts)
	b = binary.BigEndian.AppendUint32(b, origin)
	return binary.BigEndian.AppendUint64(b, seq)
}

func dataKeyID(stream string, id recordID) []byte { return append(dataPrefix(stream), id[:]...) }

// originKey is 'o' origin(4) seq(8): an origin's records in the order it
// took them. Its value is stream 0x00 ts(8), which finds the data key.
func originKey(origin uint32, seq uint64) []byte {
	b := make([]byte, 0, 13)
	b = append(b, prefixOrigin)
	b = binary.BigEndian.AppendUint32(b, origin)
	return binary.BigEndian.AppendUint64(b, seq)
}

func originValue(stream string, ts uint64) []byte {
	b := make([]byte, 0, len(stream)+9)
	b = append(b, stream...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, ts)
}

// indexPrefix is 'x' stream 0x00, optionally followed by one field, or a
// field and its value.
func indexPrefix(stream string, fieldValue ...string) []byte {
	b := make([]byte, 0, 2+len(stream)+32)
	b = append(b, prefixIndex)
	b = append(b, stream...)
	b = append(b, 0)
	for _, s := range fieldValue {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func usageKey(stream string) []byte { return append([]byte{prefixUsage}, stream...) }

// recordID is the ts+seq suffix shared by a record's data and index keys.
type recordID [idLen]byte

func idOf(key []byte) (id recordID) {
	copy(id[:], key[len(key)-idLen:])
	return id
}

func newID(ts uint64, origin uint32, seq uint64) (id recordID) {
	binary.BigEndian.PutUint64(id[:8], ts)
	binary.BigEndian.PutUint32(id[8:12], origin)
	binary.BigEndian.PutUint64(id[12:], seq)
	return id
}

func (id recordID) ts() uint64 { return binary.BigEndian.Uint64(id[:8]) }

func (id recordID) origin() uint32 { return binary.BigEndian.Uint32(id[8:12]) }

func (id recordID) seq() uint64 { return binary.BigEndian.Uint64(id[12:]) }

// Cursors are the record ID the previous page ended at, base64url encoded.

func encodeCursor(id recordID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func decodeCursor(s string) (id recordID, err error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != idLen {
		return id, flowg.ErrBadCursor
	}
	copy(id[:], b)
	return id, nil
}

func tsOf(t time.Time) uint64 { return uint64(t.UnixNano()) }

func timeOf(ts uint64) time.Time { return time.Unix(0, int64(ts)).UTC() }

// encodeFields writes fields as uvarint(n) then, in key order,
// uvarint(len k) k uvarint(len v) v.
func encodeFields(fields map[string]string) []byte {
	keys := make([]string, 0, len(fields))
	n := binary.MaxVarintLen64
	for k, v := range fields {
		keys = append(keys, k)
		n += len(k) + len(v) + 4
	}
	sort.Strings(keys)
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		v := fields[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

var errCorrupt = errors.New("corrupt record value")

func decodeFields(b []byte) (map[string]string, error) {
	fields := map[string]string{}
	if err := decodeFieldsInto(b, fields, false, nil); err != nil {
		return nil, err
	}
	return fields, nil
}

// decodeFieldsInto decodes like decodeFields into m, cleared first: only
// the fields named in want, unless want is nil. With alias the strings
// point into b instead of being copies: a scan reads millions of records
// and keeps a few values, so it copies only those.
func decodeFieldsInto(b []byte, m map[string]string, alias bool, want []string) error {
	clear(m)
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return errCorrupt
	}
	b = b[w:]
	next := func() (string, error) {
		l, w := binary.Uvarint(b)
		if w <= 0 || l > uint64(len(b)-w) {
			return "", errCorrupt
		}
		v := b[w : w+int(l)]
		b = b[w+int(l):]
		if alias {
			return unsafe.String(unsafe.SliceData(v), len(v)), nil
		}
		return string(v), nil
	}
	for range n {
		k, err := next()
		if err != nil {
			return err
		}
		v, err := next()
		if err != nil {
			return err
		}
		if want == nil || slices.Contains(want, k) {
			m[k] = v
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(b))
	}
	return nil
}

// usage is the persisted form of a stream's usage.
type usage struct {
	records, bytes int64
	oldest, newest uint64
}

func (u usage) encode() []byte {
	b := binary.AppendUvarint(nil, uint64(u.records))
	b = binary.AppendUvarint(b, uint64(u.bytes))
	b = binary.AppendUvarint(b, u.oldest)
	return binary.AppendUvarint(b, u.newest)
}

func decodeUsage(b []byte) (u usage, err error) {
	var v [4]uint64
	for i := range v {
		x, w := binary.Uvarint(b)
		if w <= 0 {
			return u, errCorrupt
		}
		v[i], b = x, b[w:]
	}
	return usage{int64(v[0]), int64(v[1]), v[2], v[3]}, nil
}
