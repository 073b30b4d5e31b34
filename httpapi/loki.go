package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/encoding/protowire"

	flowg "github.com/flowg-server/flowg-server"
)

// DefaultLokiStream takes Loki pushes whose labels name no service or job.
const DefaultLokiStream = "loki"

// lokiPush takes a Loki push (POST /loki/api/v1/push, what Promtail, Grafana
// Alloy, Vector's and Fluent Bit's loki outputs call): snappy-compressed
// protobuf (Content-Type application/x-protobuf) or JSON. Labels and
// structured metadata become fields under their own names, the line is
// message. Each stream of the push goes to the stream the StreamHeader
// names, else its service_name label, else its job label, else
// DefaultLokiStream; at /api/v1/streams/{stream}/loki/api/v1/push all go
// to {stream}. Answers 204, as Loki does.
func (a *API) lokiPush(w http.ResponseWriter, r *http.Request) {
	fixed, ok := a.pushStream(w, r)
	if !ok {
		return
	}
	mt, ok := a.protoOrJSON(w, r, "a Loki push (snappy protobuf)")
	if !ok {
		return
	}
	body, release, ok := a.admit(w, r)
	if !ok {
		return
	}
	defer release()
	var streams []lokiStream
	var err error
	if mt == "application/json" {
		streams, err = decodeLokiJSON(body)
	} else {
		if r.Header.Get("Content-Encoding") == "" {
			// The protobuf is snappy-compressed without saying so: the
			// decoded bytes are weighed too before they are made.
			decoded, derr := s2.DecodedLen(body)
			if derr != nil {
				a.reject(w, r, "body", errorf(http.StatusBadRequest, "bad snappy body: %v", derr))
				return
			}
			if extra := min(int64(decoded), a.cfg.Limits.MaxBodyBytes) - int64(len(body)); extra > 0 {
				if !a.inflight.TryAcquire(extra) {
					a.m.ingestBusy.Inc()
					w.Header().Set("Retry-After", "1")
					a.reject(w, r, "busy", errorf(http.StatusTooManyRequests, "the node is storing %d bytes of ingest already; retry shortly", a.cfg.Limits.MaxIngestInFlight))
					return
				}
				defer a.inflight.Release(extra)
			}
			if body, err = decodeSnappy(body, a.cfg.Limits.MaxBodyBytes, func(string) error {
				return errorf(http.StatusRequestEntityTooLarge, "the decoded body is larger than %d bytes (--ingest-max-body)", a.cfg.Limits.MaxBodyBytes)
			}); err != nil {
				a.reject(w, r, "body", err)
				return
			}
		}
		streams, err = decodeLokiProto(body)
	}
	if err != nil {
		if statusOf(err) != http.StatusRequestEntityTooLarge {
			err = errorf(http.StatusBadRequest, "bad Loki push: %v", err)
		}
		a.reject(w, r, "parse", err)
		return
	}
	list, err := lokiRecords(streams, fixed, time.Now().UTC())
	if err != nil {
		a.reject(w, r, "parse", err)
		return
	}
	if !a.commitAll(w, r, list) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// lokiStream is one stream of a push: its labels and entries.
type lokiStream struct {
	labels  [][2]string
	entries []lokiEntry
}

type lokiEntry struct {
	ts       time.Time
	line     string
	metadata [][2]string
}

// lokiRecords turns streams into records per stream; a push over the batch
// limit, or with an entry over a record limit, is refused whole (Loki
// clients retry a push as a unit).
func lokiRecords(streams []lokiStream, fixed string, now time.Time) ([]streamBatch, error) {
	var out batches
	n := 0
	for si, s := range streams {
		stream := fixed
		if stream == "" {
			stream = DefaultLokiStream
			for _, key := range []string{"service_name", "job"} {
				if v := labelOf(s.labels, key); v != "" {
					if name := streamNameOf(v); name != "" {
						stream = name
						break
					}
				}
			}
		}
		for ei, e := range s.entries {
			if n++; n > flowg.MaxBatchRecords {
				return nil, errorf(http.StatusRequestEntityTooLarge, "more than %d entries", flowg.MaxBatchRecords)
			}
			f := make(map[string]string, len(s.labels)+len(e.metadata)+1)
			for _, l := range s.labels {
				f[l[0]] = l[1]
			}
			for _, l := range e.metadata {
				f[l[0]] = l[1]
			}
			f["message"] = e.line
			ts := e.ts
			if ts.IsZero() {
				ts = now
			}
			rec := flowg.Record{Timestamp: ts, Fields: f}
			if err := rec.Validate(); err != nil {
				return nil, errorf(http.StatusBadRequest, "stream %d entry %d: %v", si, ei, err)
			}
			out.add(stream, rec)
		}
	}
	return out.list, nil
}

func labelOf(labels [][2]string, key string) string {
	for _, l := range labels {
		if l[0] == key {
			return l[1]
		}
	}
	return ""
}

// decodeLokiProto decodes a Loki PushRequest (logproto, the published
// schema push.proto): streams = 1 {labels = 1, entries = 2 {timestamp = 1
// {seconds = 1, nanos = 2}, line = 2, structuredMetadata = 3 {name = 1,
// value = 2}}}. It is written on protowire because the schema's own Go
// package lives in Loki's module, whose dependencies dwarf this binary's;
// the five messages read here are the whole schema a push uses.
func decodeLokiProto(b []byte) ([]lokiStream, error) {
	var out []lokiStream
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		var s lokiStream
		err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				labels, err := parseLokiLabels(string(v))
				if err != nil {
					return err
				}
				s.labels = labels
			case num == 2 && typ == protowire.BytesType:
				e, err := decodeLokiEntry(v)
				if err != nil {
					return err
				}
				s.entries = append(s.entries, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

func decodeLokiEntry(b []byte) (lokiEntry, error) {
	var e lokiEntry
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1:
			var sec, nanos int64
			err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if typ != protowire.VarintType {
					return nil
				}
				x, _ := protowire.ConsumeVarint(v)
				switch num {
				case 1:
					sec = int64(x)
				case 2:
					nanos = int64(int32(x))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if sec != 0 || nanos != 0 {
				e.ts = time.Unix(sec, nanos).UTC()
			}
		case 2:
			e.line = string(v) // UTF-8 is checked with the limits (Record.Validate)
		case 3:
			var name, value string
			err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				switch {
				case typ != protowire.BytesType:
				case num == 1:
					name = string(v)
				case num == 2:
					value = string(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			e.metadata = append(e.metadata, [2]string{name, value})
		}
		return nil
	})
	return e, err
}

// eachField calls fn for every field of a protobuf message; v is the
// value's bytes (a varint's encoding for varints).
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			x, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			v, n = x, m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			v = b[:n]
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// parseLokiLabels reads a label set as Loki writes it: {a="x", b="y"},
// values in Go-style double-quoted strings.
func parseLokiLabels(s string) ([][2]string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("labels %.64q are not {name=\"value\", ...}", s)
	}
	s = strings.TrimSpace(s[1 : len(s)-1])
	var out [][2]string
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("label %.64q has no name=", s)
		}
		name := strings.TrimSpace(s[:eq])
		rest := strings.TrimSpace(s[eq+1:])
		if !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf("label %s: value is not quoted", name)
		}
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return nil, fmt.Errorf("label %s: %v", name, err)
		}
		value, _ := strconv.Unquote(q)
		out = append(out, [2]string{name, value})
		rest = strings.TrimSpace(rest[len(q):])
		if rest != "" && rest[0] != ',' {
			return nil, fmt.Errorf("label %s: expected ',' after its value", name)
		}
		s = strings.TrimSpace(strings.TrimPrefix(rest, ","))
	}
	return out, nil
}

// decodeLokiJSON decodes the JSON push:
// {"streams":[{"stream":{"label":"value"},"values":[["<unix ns>","<line>",{metadata}]]}]}.
func decodeLokiJSON(b []byte) ([]lokiStream, error) {
	var p fastjson.Parser
	v, err := p.ParseBytes(b)
	if err != nil {
		return nil, err
	}
	sv := v.Get("streams")
	if sv == nil {
		return nil, errors.New(`no "streams" array`)
	}
	arr, err := sv.Array()
	if err != nil {
		return nil, errors.New(`"streams" is not an array`)
	}
	out := make([]lokiStream, 0, len(arr))
	for i, sv := range arr {
		var s lokiStream
		if o := sv.GetObject("stream"); o != nil {
			o.Visit(func(k []byte, v *fastjson.Value) {
				s.labels = append(s.labels, [2]string{string(k), string(v.GetStringBytes())})
			})
		}
		vv := sv.Get("values")
		if vv == nil {
			return nil, fmt.Errorf("stream %d: no \"values\" array", i)
		}
		values, err := vv.Array()
		if err != nil {
			return nil, fmt.Errorf("stream %d: \"values\" is not an array", i)
		}
		for j, ev := range values {
			parts, err := ev.Array()
			if err != nil || len(parts) < 2 {
				return nil, fmt.Errorf("stream %d value %d: want [\"<unix ns>\", \"<line>\"]", i, j)
			}
			ns, err := strconv.ParseInt(string(parts[0].GetStringBytes()), 10, 64)
			if err != nil || ns < 0 {
				return nil, fmt.Errorf("stream %d value %d: timestamp is not a string of Unix nanoseconds", i, j)
			}
			e := lokiEntry{line: string(parts[1].GetStringBytes())}
			if ns > 0 {
				e.ts = time.Unix(0, ns).UTC()
			}
			if len(parts) > 2 {
				if o, err := parts[2].Object(); err == nil {
					o.Visit(func(k []byte, v *fastjson.Value) {
						e.metadata = append(e.metadata, [2]string{string(k), string(v.GetStringBytes())})
					})
				}
			}
			s.entries = append(s.entries, e)
		}
		out = append(out, s)
	}
	return out, nil
}
