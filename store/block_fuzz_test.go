package store

import (
	"maps"
	"slices"
	"testing"
)

// FuzzBlock: any value decodes to an error or to a block, never a panic;
// records encoded into a block decode to themselves.
func FuzzBlock(f *testing.F) {
	f.Add([]byte("level=info msg=hello\nlevel=error msg=world\nn=3"), uint64(1), uint64(5))
	f.Add([]byte("\n\n"), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, ts, step uint64) {
		// Arbitrary bytes as a block value.
		if h, err := parseHeader(data); err == nil {
			if blk, err := decodeBlock(blockRef{}, h, nil, true, false); err == nil {
				m := map[string]string{}
				for i := range blk.len() {
					blk.fields(i, m)
				}
			}
		}
		// The bytes as records: lines of space-separated k=v.
		var recs []blockRec
		for line := range slices.Values(splitBytes(data, '\n')) {
			fields := map[string]string{}
			for _, kv := range splitBytes(line, ' ') {
				if k, v, ok := cut(kv); ok {
					fields[k] = v
				}
			}
			var id recordID
			putBE(id[:8], ts+uint64(len(recs))*(step%1000))
			putBE(id[12:], uint64(len(recs))*7)
			recs = append(recs, blockRec{id: id, fields: fields})
			if len(recs) == maxBlockRecords {
				break
			}
		}
		h, err := parseHeader(encodeBlock(0, recs))
		if err != nil {
			t.Fatal(err)
		}
		blk, err := decodeBlock(blockRef{}, h, nil, true, false)
		if err != nil {
			t.Fatal(err)
		}
		if blk.len() != len(recs) {
			t.Fatalf("%d records decoded, want %d", blk.len(), len(recs))
		}
		for i, r := range recs {
			m := map[string]string{}
			blk.fields(i, m)
			if blk.id(i) != r.id || !maps.Equal(m, r.fields) {
				t.Fatalf("record %d: %x %v, want %x %v", i, blk.id(i), m, r.id, r.fields)
			}
		}
	})
}

func splitBytes(b []byte, sep byte) [][]byte {
	var out [][]byte
	for {
		i := slices.Index(b, sep)
		if i < 0 {
			return append(out, b)
		}
		out, b = append(out, b[:i]), b[i+1:]
	}
}

func cut(kv []byte) (string, string, bool) {
	i := slices.Index(kv, '=')
	if i <= 0 {
		return "", "", false
	}
	return string(kv[:i]), string(kv[i+1:]), true
}
