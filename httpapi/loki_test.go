package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/internal/lokitest"
	"github.com/klauspost/compress/s2"
)

// TestLoki_ProtobufAndJSON: a snappy protobuf push and a JSON push land
// with their labels and structured metadata as fields, in the stream of
// their service_name or job label; bad pushes store nothing.
func TestLoki_ProtobufAndJSON(t *testing.T) {
	n := newNode(t)
	at := time.Date(2026, 12, 2, 9, 0, 0, 123456789, time.UTC)
	body := lokitest.Push(
		lokitest.Stream{Labels: `{job="varlogs", service_name="nginx", env="prod"}`, Entries: []lokitest.Entry{
			{Time: at, Line: "GET / 200", Metadata: [][2]string{{"trace_id", "abc"}}}, {Time: at.Add(time.Second), Line: "GET /x 404"}}},
		lokitest.Stream{Labels: `{job="batch", filename="/var/log/batch.log"}`, Entries: []lokitest.Entry{{Time: at, Line: `line with "quotes" and \ backslash`}}},
	)
	if code, out := n.post("/loki/api/v1/push", body, map[string]string{"Content-Type": "application/x-protobuf"}); code != 204 {
		t.Fatalf("protobuf push: %d %s", code, out)
	}
	nginx := n.query("nginx", nil).Records
	if len(nginx) != 2 {
		t.Fatalf("nginx: %+v", nginx)
	}
	last := nginx[1]
	if nginx[0].Fields["message"] == "GET / 200" {
		last = nginx[0]
	}
	if last.Fields["message"] != "GET / 200" || last.Fields["env"] != "prod" || last.Fields["job"] != "varlogs" || last.Fields["trace_id"] != "abc" ||
		!strings.HasPrefix(last.Timestamp, "2026-12-02T09:00:00.123456789") {
		t.Errorf("nginx record: %+v", last)
	}
	if r := n.query("batch", nil).Records; len(r) != 1 || r[0].Fields["message"] != `line with "quotes" and \ backslash` || r[0].Fields["filename"] != "/var/log/batch.log" {
		t.Errorf("batch: %+v", r)
	}
	js := `{"streams":[{"stream":{"app":"web","level":"info"},"values":[["1764666000000000000","from json",{"user":"u1"}],["1764666001000000000","second"]]}]}`
	if code, out := n.post("/api/v1/streams/webjson/loki/api/v1/push", []byte(js), map[string]string{"Content-Type": "application/json"}); code != 204 {
		t.Fatalf("JSON push: %d %s", code, out)
	}
	if r := n.query("webjson", nil).Records; len(r) != 2 || r[1].Fields["app"] != "web" && r[0].Fields["app"] != "web" {
		t.Errorf("webjson: %+v", r)
	}
	if code, _ := n.post("/loki/api/v1/push", []byte(js), map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}); code != 400 {
		t.Errorf("a JSON body announced as gzip: %d, want 400", code)
	}
	for name, bad := range map[string][]byte{
		"not snappy":   []byte("plain bytes"),
		"bad labels":   lokitest.Push(lokitest.Stream{Labels: `{job=unquoted}`, Entries: []lokitest.Entry{{Time: at, Line: "x"}}}),
		"not protobuf": s2.EncodeSnappy(nil, []byte{0x0a, 0xff, 0xff, 0xff}),
	} {
		if code, out := n.post("/loki/api/v1/push", bad, map[string]string{"Content-Type": "application/x-protobuf", "X-Flowg-Stream": "bad"}); code != 400 {
			t.Errorf("%s: %d %s, want 400", name, code, out)
		}
	}
	if code, _ := n.do("GET", "/api/v1/streams/bad/logs", "", ""); code != 404 {
		t.Errorf("a refused push left records: %d", code)
	}
	// A bomb: a snappy header announcing 64 MiB.
	bomb := s2.EncodeSnappy(nil, make([]byte, 4<<20))
	if code, _ := n.post("/loki/api/v1/push", bomb, map[string]string{"Content-Type": "application/x-protobuf"}); code != 413 {
		t.Errorf("4 MiB of zeros in a few KiB: %d, want 413", code)
	}
}
