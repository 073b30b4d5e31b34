// Package lokitest writes Loki pushes on the wire, from Loki's published
// schema (push.proto), for tests and benchmarks: what Promtail and Alloy
// send.
package lokitest

import (
	"time"

	"github.com/klauspost/compress/s2"
	"google.golang.org/protobuf/encoding/protowire"
)

// Entry is one line of a stream; a zero Time is left out (the receive
// time then).
type Entry struct {
	Time     time.Time
	Line     string
	Metadata [][2]string // structured metadata, in order
}

// Stream is a label set, as Loki writes it ({a="b"}), and its entries.
type Stream struct {
	Labels  string
	Entries []Entry
}

// Request is a PushRequest, not compressed.
func Request(streams ...Stream) []byte {
	var req []byte
	for _, st := range streams {
		var s []byte
		s = protowire.AppendTag(s, 1, protowire.BytesType)
		s = protowire.AppendString(s, st.Labels)
		for _, e := range st.Entries {
			var en []byte
			if !e.Time.IsZero() {
				var ts []byte
				ts = protowire.AppendTag(ts, 1, protowire.VarintType)
				ts = protowire.AppendVarint(ts, uint64(e.Time.Unix()))
				ts = protowire.AppendTag(ts, 2, protowire.VarintType)
				ts = protowire.AppendVarint(ts, uint64(e.Time.Nanosecond()))
				en = protowire.AppendTag(en, 1, protowire.BytesType)
				en = protowire.AppendBytes(en, ts)
			}
			en = protowire.AppendTag(en, 2, protowire.BytesType)
			en = protowire.AppendString(en, e.Line)
			for _, kv := range e.Metadata {
				var lp []byte
				lp = protowire.AppendTag(lp, 1, protowire.BytesType)
				lp = protowire.AppendString(lp, kv[0])
				lp = protowire.AppendTag(lp, 2, protowire.BytesType)
				lp = protowire.AppendString(lp, kv[1])
				en = protowire.AppendTag(en, 3, protowire.BytesType)
				en = protowire.AppendBytes(en, lp)
			}
			s = protowire.AppendTag(s, 2, protowire.BytesType)
			s = protowire.AppendBytes(s, en)
		}
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, s)
	}
	return req
}

// Push is a PushRequest compressed as clients send it (a snappy block).
func Push(streams ...Stream) []byte { return s2.EncodeSnappy(nil, Request(streams...)) }
