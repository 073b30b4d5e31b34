package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/internal/lokitest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
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
	loki := lokitest.Stream{Labels: `{job="bench", source="loki"}`}
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
		loki.Entries = append(loki.Entries, lokitest.Entry{Time: now, Line: m, Metadata: [][2]string{{"level", "info"},
			{"service", fmt.Sprintf("svc-%02d", i%20)}, {"host", fmt.Sprintf("host-%02d", i%50)}, {"http.status", "200"},
			{"latency_ms", fmt.Sprint(i % 1000)}, {"trace_id", fmt.Sprintf("%032x", i*7919)}}})
	}
	jsonBody := []byte(`{"records":[` + strings.Join(parts, ",") + `]}`)
	otlpBody, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	lokiBody := lokitest.Request(loki)
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
			st, err := decodeLokiProto(lokiBody)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := lokiRecords(st, "x", now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
