package httpapi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	flowg "github.com/flowg-server/flowg-server"
)

var fuzzNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// checkBatches fails when a decoder let through a record over the limits.
func checkBatches(t *testing.T, batches []streamBatch) {
	for _, b := range batches {
		if flowg.ValidateStreamName(b.stream) != nil {
			t.Fatalf("stream name %q", b.stream)
		}
		for i, r := range b.recs {
			if err := r.Validate(); err != nil {
				t.Fatalf("record %d of %s: %v", i, b.stream, err)
			}
		}
	}
}

// FuzzLoki decodes pushes, protobuf and JSON: an error or records within
// the limits.
func FuzzLoki(f *testing.F) {
	f.Add([]byte{0x0a, 0x1c, 0x0a, 0x0c, '{', 'a', '=', '"', 'b', '"', '}', 0x12, 0x0c, 0x0a, 0x04, 0x08, 0x01, 0x10, 0x02, 0x12, 0x04, 'l', 'i', 'n', 'e'}, false)
	f.Add([]byte(`{"streams":[{"stream":{"job":"x"},"values":[["1","a",{"k":"v"}]]}]}`), true)
	f.Add([]byte(`{"streams":[{"values":[["-1","a"]]}]}`), true)
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, false)
	f.Fuzz(func(t *testing.T, body []byte, json bool) {
		var streams []lokiStream
		var err error
		if json {
			streams, err = decodeLokiJSON(body)
		} else {
			streams, err = decodeLokiProto(body)
		}
		if err != nil {
			return
		}
		batches, err := lokiRecords(streams, "", fuzzNow)
		if err == nil {
			checkBatches(t, batches)
		}
	})
}

// FuzzLokiLabels parses label sets; what parses, written back, parses to
// the same labels.
func FuzzLokiLabels(f *testing.F) {
	for _, s := range []string{`{}`, `{a="b"}`, `{a="b", c="d\"e"}`, `{ a = "\u00e9" ,b="x"}`, `{a=b}`, `{a="b"`, `{="x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		labels, err := parseLokiLabels(s)
		if err != nil {
			return
		}
		parts := make([]string, len(labels))
		for i, l := range labels {
			if strings.ContainsAny(l[0], `=,"{}`) || strings.TrimSpace(l[0]) != l[0] {
				return // names Loki would refuse; not written back
			}
			parts[i] = l[0] + "=" + strconv.Quote(l[1])
		}
		again, err := parseLokiLabels("{" + strings.Join(parts, ", ") + "}")
		if err != nil || !slices.Equal(again, labels) {
			t.Fatalf("%q gave %q; written back %v, %v", s, labels, again, err)
		}
	})
}

// FuzzOTLP decodes export requests and maps them: an error, or records
// within the limits, with every record counted once as stored or rejected.
func FuzzOTLP(f *testing.F) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "svc/1")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetEmptyMap().PutStr("k", "v")
	lr.Attributes().PutEmptySlice("s").AppendEmpty().SetInt(1)
	b, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	f.Add(b)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := plogotlp.NewExportRequest()
		if req.UnmarshalProto(body) != nil {
			return
		}
		batches, rejected, _, err := otlpRecords(req.Logs(), "", fuzzNow)
		if err != nil {
			return
		}
		checkBatches(t, batches)
		stored := 0
		for _, b := range batches {
			stored += len(b.recs)
		}
		if stored+rejected != req.Logs().LogRecordCount() {
			t.Fatalf("%d stored + %d rejected of %d records", stored, rejected, req.Logs().LogRecordCount())
		}
	})
}

// FuzzBulk reads bulk bodies: an error, or an item per action and records
// within the limits.
func FuzzBulk(f *testing.F) {
	for _, s := range []string{
		"{\"index\":{\"_index\":\"a\"}}\n{\"x\":1}\n", "{\"create\":{}}\n{\"@timestamp\":\"2026-01-01T00:00:00Z\"}\n",
		"{\"delete\":{\"_id\":\"1\"}}\n", "{\"update\":{}}\n{\"doc\":{}}\n", "{\"index\":{}}\nnot json\n", "{}\n", "{\"index\":{}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, batches, err := parseBulk(body, "", "", fuzzNow)
		if err != nil {
			return
		}
		checkBatches(t, batches)
		ok := 0
		for _, it := range items {
			if it.status == 201 {
				ok++
			}
		}
		stored := 0
		for _, b := range batches {
			stored += len(b.recs)
		}
		if ok != stored {
			t.Fatalf("%d items created, %d records", ok, stored)
		}
	})
}

// FuzzSnappy decodes snappy blocks under a limit: never more than it.
func FuzzSnappy(f *testing.F) {
	f.Add(s2.EncodeSnappy(nil, []byte("hello hello hello")))
	f.Add(s2.EncodeSnappy(nil, make([]byte, 1<<20)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := decodeSnappy(b, limit, func(string) error { return fmt.Errorf("too large") })
		if err == nil && len(out) > limit {
			t.Fatalf("decoded %d bytes past the %d limit", len(out), limit)
		}
	})
}

// FuzzQueryTime reads from/to values: an error, or a time; never a panic
// or a wrapped duration.
func FuzzQueryTime(f *testing.F) {
	for _, s := range []string{"now", "-1h", "now-15m", "now+5m", "-1.5h30m", "1767225600", "2026-01-02T03:04:05Z", "-99999999999w", "now-", "-0.0000001ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseQueryTime(s, fuzzNow)
		if err == nil && strings.HasPrefix(s, "-") && got.After(fuzzNow) {
			t.Fatalf("%q is after now: %s", s, got)
		}
	})
}
