package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// BenchmarkDecode measures turning 2,000 nine-field records into records,
// per protocol, without the store.
func BenchmarkDecode(b *testing.B) {
	const n = 2000
	now := time.Now()
	var parts []string
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("job", "bench")
	rl.Resource().Attributes().PutStr("source", "otlp")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	var s []byte
	s = protowire.AppendTag(s, 1, protowire.BytesType)
	s = protowire.AppendString(s, `{job="bench", source="loki"}`)
	for i := range n {
		m := fmt.Sprintf("request %d handled for user u-%d in the checkout path", i, i%977)
		parts = append(parts, fmt.Sprintf(`{"job":"bench","source":"json","level":"info","service":"svc-%02d","host":"host-%02d","http.status":"200","latency_ms":"%d","trace_id":"%032x","message":%q}`, i%20, i%50, i%1000, i*7919, m))
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		lr.Body().SetStr(m)
		a := lr.Attributes()
		a.PutStr("level", "info")
		a.PutStr("service", fmt.Sprintf("svc-%02d", i%20))
		a.PutStr("host", fmt.Sprintf("host-%02d", i%50))
		a.PutStr("http.status", "200")
		a.PutStr("latency_ms", fmt.Sprint(i%1000))
		lr.SetTraceID(pcommon.TraceID{1, 2, 3, byte(i)})
		var en, ts []byte
		ts = protowire.AppendTag(ts, 1, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(now.Unix()))
		en = protowire.AppendTag(en, 1, protowire.BytesType)
		en = protowire.AppendBytes(en, ts)
		en = protowire.AppendTag(en, 2, protowire.BytesType)
		en = protowire.AppendString(en, m)
		for _, kv := range [][2]string{{"level", "info"}, {"service", fmt.Sprintf("svc-%02d", i%20)}, {"host", fmt.Sprintf("host-%02d", i%50)}, {"http.status", "200"}, {"latency_ms", fmt.Sprint(i % 1000)}, {"trace_id", fmt.Sprintf("%032x", i*7919)}} {
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
	jsonBody := []byte(`{"records":[` + strings.Join(parts, ",") + `]}`)
	otlpBody, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	var lokiBody []byte
	lokiBody = protowire.AppendTag(lokiBody, 1, protowire.BytesType)
	lokiBody = protowire.AppendBytes(lokiBody, s)
	b.Run("json", func(b *testing.B) {
		for range b.N {
			if _, err := ParseStruct(jsonBody, false, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("otlp", func(b *testing.B) {
		for range b.N {
			req := plogotlp.NewExportRequest()
			if err := req.UnmarshalProto(otlpBody); err != nil {
				b.Fatal(err)
			}
			if _, _, _, err := otlpRecords(req.Logs(), "x", now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("loki", func(b *testing.B) {
		for range b.N {
			st, err := DecodeLokiProto(lokiBody)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := lokiRecords(st, "x", now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
