package replica

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	flowg "github.com/flowg-server/flowg-server"
)

// The answer to a pull is binary: each record's fields travel in the
// store's own encoding, so a record costs its stored bytes plus its stream
// name and about 12 bytes, where JSON would escape and base64 them.
//
//	uvarint n, n × (str origin, uvarint head)            every origin the node holds
//	uvarint m, m × (str origin, uvarint upTo, uvarint k,  the records asked for
//	                k × (str stream, uvarint ts, uvarint seq, str value))
//
// str is uvarint length then bytes.

// chunk is one origin's part of a pull answer.
type chunk struct {
	Origin  string
	UpTo    uint64
	Records []flowg.ReplRecord
}

// pullAnswer is a decoded answer.
type pullAnswer struct {
	Heads  map[string]uint64
	Chunks []chunk
}

func appendStr(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeAnswer(a pullAnswer) []byte {
	size := 16
	for _, c := range a.Chunks {
		for _, r := range c.Records {
			size += len(r.Stream) + len(r.Value) + 24
		}
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(a.Heads)))
	for o, h := range a.Heads {
		b = appendStr(b, []byte(o))
		b = binary.AppendUvarint(b, h)
	}
	b = binary.AppendUvarint(b, uint64(len(a.Chunks)))
	for _, c := range a.Chunks {
		b = appendStr(b, []byte(c.Origin))
		b = binary.AppendUvarint(b, c.UpTo)
		b = binary.AppendUvarint(b, uint64(len(c.Records)))
		for _, r := range c.Records {
			b = appendStr(b, []byte(r.Stream))
			b = binary.AppendUvarint(b, r.TS)
			b = binary.AppendUvarint(b, r.Seq)
			b = appendStr(b, r.Value)
		}
	}
	return b
}

var errWire = errors.New("malformed pull answer")

// Bounds on what an answer may hold, checked before anything is allocated.
const (
	maxOrigins     = 4096
	maxChunkRecs   = 1 << 20
	maxNameLen     = 255
	maxRecordValue = flowg.MaxRecordBytes + 4*flowg.MaxFieldsPerRecord + 16
)

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errWire
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str(max int) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(max) || n > uint64(len(r.b)) {
		r.err = errWire
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func decodeAnswer(b []byte) (pullAnswer, error) {
	r := &reader{b: b}
	a := pullAnswer{Heads: map[string]uint64{}}
	n := r.uvarint()
	if n > maxOrigins {
		return a, fmt.Errorf("%w: %d origins", errWire, n)
	}
	for range n {
		o := string(r.str(maxNameLen))
		a.Heads[o] = r.uvarint()
	}
	m := r.uvarint()
	if m > maxOrigins {
		return a, fmt.Errorf("%w: %d chunks", errWire, m)
	}
	for range m {
		c := chunk{Origin: string(r.str(maxNameLen)), UpTo: r.uvarint()}
		k := r.uvarint()
		// Each record takes at least 4 bytes: no more records than that.
		if k > maxChunkRecs || k > uint64(len(r.b))/4 {
			return a, fmt.Errorf("%w: %d records", errWire, k)
		}
		c.Records = make([]flowg.ReplRecord, 0, k)
		for range k {
			rec := flowg.ReplRecord{Stream: string(r.str(maxNameLen))}
			rec.TS, rec.Seq = r.uvarint(), r.uvarint()
			rec.Value = r.str(maxRecordValue)
			c.Records = append(c.Records, rec)
		}
		a.Chunks = append(a.Chunks, c)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errWire, len(r.b))
	}
	return a, r.err
}

// wireEntries are entries as they travel in JSON bodies: {"db","key",
// "value"}, the names every version of the protocol has used.
type wireEntries []flowg.MetaEntry

type wireEntry struct {
	DB    string `json:"db"`
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

func (w wireEntries) MarshalJSON() ([]byte, error) {
	out := make([]wireEntry, len(w))
	for i, e := range w {
		out[i] = wireEntry(e)
	}
	return json.Marshal(out)
}

func (w *wireEntries) UnmarshalJSON(b []byte) error {
	var in []wireEntry
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*w = make(wireEntries, len(in))
	for i, e := range in {
		(*w)[i] = flowg.MetaEntry(e)
	}
	return nil
}
