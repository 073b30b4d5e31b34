package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/flowg-server/flowg-server/internal/testwait"
)

// otelcolBinary is the OpenTelemetry Collector that scripts/otelcol.sh
// builds from the Go module proxy ($FLOWG_OTELCOL when set).
func otelcolBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FLOWG_OTELCOL"); p != "" {
		return p
	}
	out, err := exec.Command("bash", "../../scripts/otelcol.sh").Output()
	if err != nil {
		t.Fatalf("the OpenTelemetry Collector is required (scripts/otelcol.sh builds it): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestE2E_OTelCollector puts a real OpenTelemetry Collector in front of a
// node, as operators run it: OTLP receivers, and the otlphttp exporter
// (its type is otlp_http from collector 0.16x) at its defaults (gzip,
// protobuf; and one with encoding json) pointed at the node with a token. An application logs through the collector with the Go
// SDK; every record is found in the stream of its service.name with its
// attributes.
func TestE2E_OTelCollector(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	dir := t.TempDir()
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	n := start(t, dir, nil, httpAddr, mgmtAddr, nodeArgs(dir, 0, httpAddr, mgmtAddr)...)
	tok := n.login("root", "root")
	protoIn, jsonIn := freeAddr(t), freeAddr(t)
	config := fmt.Sprintf(`receivers:
  otlp/proto:
    protocols:
      http:
        endpoint: %s
  otlp/json:
    protocols:
      http:
        endpoint: %s
exporters:
  otlp_http/proto:
    endpoint: http://%s
    headers:
      Authorization: Bearer %s
  otlp_http/json:
    endpoint: http://%s
    encoding: json
    headers:
      Authorization: Bearer %s
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs/proto:
      receivers: [otlp/proto]
      exporters: [otlp_http/proto]
    logs/json:
      receivers: [otlp/json]
      exporters: [otlp_http/json]
`, protoIn, jsonIn, httpAddr, tok, httpAddr, tok)
	cfgFile := filepath.Join(dir, "otelcol.yaml")
	os.WriteFile(cfgFile, []byte(config), 0o600)
	col := exec.Command(otelcolBinary(t), "--config", "file:"+cfgFile)
	var mu sync.Mutex
	var out bytes.Buffer
	col.Stdout, col.Stderr = syncWriter{&mu, &out}, syncWriter{&mu, &out}
	if err := col.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		col.Process.Kill()
		col.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("collector output:\n%s", out.String())
			mu.Unlock()
		}
	})
	testwait.Eventually(t, 20*time.Second, "the collector listening", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(out.String(), "Everything is ready")
	})

	for _, via := range []struct{ name, addr string }{{"proto", protoIn}, {"json", jsonIn}} {
		exp, err := otlploghttp.New(context.Background(), otlploghttp.WithEndpointURL("http://"+via.addr+"/v1/logs"))
		if err != nil {
			t.Fatal(err)
		}
		res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("via-"+via.name))
		lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)))
		for i := range 20 {
			var rec otellog.Record
			rec.SetBody(attribute.StringValue(fmt.Sprintf("message %d", i)))
			rec.SetSeverity(otellog.SeverityError)
			rec.AddAttributes(attribute.Int("i", i))
			lp.Logger("e2e").Emit(context.Background(), rec)
		}
		if err := lp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, stream := range []string{"via-proto", "via-json"} {
		testwait.Eventually(t, 30*time.Second, "20 records in "+stream, func() bool {
			code, b := n.request(tok, "GET", "/api/v1/streams/"+stream+"/logs?filter="+`level%20%3D%20%22error%22%20and%20i%20%3D%20%2219%22`, "")
			return code == 200 && strings.Contains(string(b), `"message 19"`) && strings.Contains(string(b), `"service.name":"`+stream+`"`) &&
				len(n.queryAll(tok, stream, nil)) == 20
		})
	}
}
