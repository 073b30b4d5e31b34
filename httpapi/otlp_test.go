package httpapi_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// TestOTLP_GoSDKExporter sends logs with the OpenTelemetry Go SDK's
// OTLP/HTTP exporter (protobuf, gzip on) to /v1/logs: the stream is the
// resource's service.name, and every attribute, the body, the severity and
// the trace context are found as fields.
func TestOTLP_GoSDKExporter(t *testing.T) {
	n := newNode(t)
	exp, err := otlploghttp.New(context.Background(), otlploghttp.WithEndpointURL(n.public.URL+"/v1/logs"),
		otlploghttp.WithCompression(otlploghttp.GzipCompression),
		otlploghttp.WithHeaders(map[string]string{"Authorization": "Bearer " + n.token}))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("checkout"), semconv.HostName("web-1"))
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
	logger := lp.Logger("shop/cart", otellog.WithInstrumentationVersion("1.2.3"))
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}))
	var rec otellog.Record
	rec.SetTimestamp(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	rec.SetBody(attribute.StringValue("payment declined"))
	rec.SetSeverity(otellog.SeverityWarn)
	rec.SetSeverityText("WARN")
	rec.AddAttributes(attribute.String("user.id", "u-42"), attribute.Int("http.status", 402))
	logger.Emit(ctx, rec)
	if err := lp.Shutdown(context.Background()); err != nil {
		t.Fatalf("export: %v", err)
	}
	recs := n.query("checkout", nil).Records
	if len(recs) != 1 {
		t.Fatalf("%d records in checkout", len(recs))
	}
	want := map[string]string{"message": "payment declined", "service.name": "checkout", "host.name": "web-1",
		"user.id": "u-42", "http.status": "402", "level": "warn", "severity_text": "WARN",
		"severity_number": "13", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
		"scope.name": "shop/cart", "scope.version": "1.2.3"}
	for k, v := range want {
		if recs[0].Fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, recs[0].Fields[k], v)
		}
	}
	if !strings.HasPrefix(recs[0].Timestamp, "2026-12-02T10:00:00") {
		t.Errorf("timestamp %s", recs[0].Timestamp)
	}
}

// TestOTLP_JSONPartialSuccessAndStreams: a JSON export (hex trace IDs, as
// the OTLP spec says) with two resources goes to two streams; the stream
// header and the per-stream route override service.name; a record over the
// limits is rejected alone with the spec's partial success; a bad body
// stores nothing.
func TestOTLP_JSONPartialSuccessAndStreams(t *testing.T) {
	n := newNode(t)
	ld := plog.NewLogs()
	for _, svc := range []string{"api", "db/primary"} {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", svc)
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.Body().SetStr("hello from " + svc)
		lr.Attributes().PutEmptyMap("card").PutStr("brand", "visa")
		lr.SetSeverityNumber(plog.SeverityNumberError)
		var tid pcommon.TraceID
		hex.Decode(tid[:], []byte("0102030405060708090a0b0c0d0e0f10"))
		lr.SetTraceID(tid)
	}
	big := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	for i := range 300 {
		big.Attributes().PutInt("k"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), int64(i))
	}
	body, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	if !strings.Contains(string(body), `"traceId":"0102030405060708090a0b0c0d0e0f10"`) {
		t.Fatalf("the JSON encoding does not carry hex trace IDs: %s", body[:200])
	}
	code, out := n.post("/v1/logs", body, map[string]string{"Content-Type": "application/json"})
	if code != 200 || !strings.Contains(out, `"rejectedLogRecords":"1"`) {
		t.Fatalf("partial success: %d %s", code, out)
	}
	if r := n.query("api", nil).Records; len(r) != 1 || r[0].Fields["trace_id"] != "0102030405060708090a0b0c0d0e0f10" || r[0].Fields["level"] != "error" || r[0].Fields["card.brand"] != "visa" {
		t.Fatalf("api: %+v", r)
	}
	if r := n.query("db_primary", nil).Records; len(r) != 1 {
		t.Fatalf("db/primary went to %+v", r)
	}
	one := plog.NewLogs()
	one.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("no service")
	pb, _ := plogotlp.NewExportRequestFromLogs(one).MarshalProto()
	for path, hdr := range map[string]map[string]string{
		"/v1/logs": {"Content-Type": "application/x-protobuf"}, "/v1/logs#hdr": {"Content-Type": "application/x-protobuf", "X-Flowg-Stream": "fromheader"},
		"/api/v1/streams/frompath/otlp/v1/logs": {"Content-Type": "application/x-protobuf"},
	} {
		if code, out := n.post(strings.TrimSuffix(path, "#hdr"), pb, hdr); code != 200 {
			t.Fatalf("%s: %d %s", path, code, out)
		}
	}
	for _, s := range []string{"otlp", "fromheader", "frompath"} {
		if r := n.query(s, nil).Records; len(r) != 1 || r[0].Fields["message"] != "no service" {
			t.Errorf("stream %s: %+v", s, r)
		}
	}
	if code, _ := n.post("/v1/logs", []byte("\x0a\xff\xff"), map[string]string{"Content-Type": "application/x-protobuf"}); code != 400 {
		t.Errorf("bad protobuf: %d", code)
	}
	if code, _ := n.post("/v1/logs", pb, map[string]string{"Content-Type": "text/plain"}); code != 415 {
		t.Errorf("text/plain: %d", code)
	}
	if code, _ := n.post("/v1/logs", pb, map[string]string{"Content-Type": "application/x-protobuf", "Authorization": "Bearer nope"}); code != 401 {
		t.Errorf("bad token: %d", code)
	}
}
