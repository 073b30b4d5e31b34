package httpapi_test

import (
	"bytes"
	"compress/zlib"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// post sends body with headers and returns the status and answer.
func (n *node) post(path string, body []byte, headers map[string]string) (int, string) {
	n.t.Helper()
	req, _ := http.NewRequest("POST", n.public.URL+path, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+n.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func compress(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch enc {
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case "deflate":
		w := zlib.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case "zstd":
		w, _ := zstd.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case "snappy":
		return s2.EncodeSnappy(nil, b)
	}
	return buf.Bytes()
}

// TestIngest_Encodings: every Content-Encoding a shipper uses is decoded;
// an unknown one is a 415; the limit applies to the decoded size, so a
// small bomb is a 413 and stores nothing.
func TestIngest_Encodings(t *testing.T) {
	n := newNode(t)
	for i, enc := range []string{"gzip", "deflate", "zstd", "snappy"} {
		body := compress(t, enc, []byte(`[{"message":"`+enc+`","i":"`+string(rune('0'+i))+`"}]`))
		if code, b := n.post("/api/v1/streams/enc/logs/struct", body, map[string]string{"Content-Encoding": enc}); code != 200 {
			t.Fatalf("%s: %d %s", enc, code, b)
		}
	}
	if got := len(n.query("enc", nil).Records); got != 4 {
		t.Fatalf("%d records, want 4", got)
	}
	if code, _ := n.post("/api/v1/streams/enc/logs/struct", []byte("x"), map[string]string{"Content-Encoding": "br"}); code != 415 {
		t.Errorf("br: %d, want 415", code)
	}
	// 4 MiB of one repeated record compresses to a few KiB; the limit is 1 MiB.
	bomb := []byte("[" + strings.Repeat(`{"message":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},`, 4<<20/40) + `{"message":"end"}]`)
	for _, enc := range []string{"gzip", "zstd", "snappy", "deflate"} {
		c := compress(t, enc, bomb)
		code, b := n.post("/api/v1/streams/bomb/logs/struct", c, map[string]string{"Content-Encoding": enc})
		if code != 413 || !strings.Contains(b, "decoded body") {
			t.Errorf("%s bomb of %d bytes: %d %s, want 413", enc, len(c), code, b)
		}
	}
	if code, _ := n.do("GET", "/api/v1/streams/bomb/logs", "", ""); code != 404 {
		t.Errorf("a refused bomb left the stream behind: %d", code)
	}
	if code, b := n.post("/api/v1/streams/enc/logs/struct", []byte("\x1f\x8b not gzip"), map[string]string{"Content-Encoding": "gzip"}); code != 400 {
		t.Errorf("corrupt gzip: %d %s, want 400", code, b)
	}
}

// TestIngest_ArraysBasicAuthAndTimes: a bare array of records, Basic auth
// whose password is a token, the common time fields and a named one.
func TestIngest_ArraysBasicAuthAndTimes(t *testing.T) {
	n := newNode(t)
	basic := func(pw string) map[string]string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth("anyone", pw)
		return map[string]string{"Authorization": req.Header.Get("Authorization")}
	}
	body := []byte(`[{"message":"a","time":"2026-01-02T03:04:05Z"},{"message":"b","ts":1767323045.5},{"message":"c","date":"not a time"},{"message":"d","_time":"2026-01-02T03:04:07Z"}]`)
	if code, b := n.post("/api/v1/streams/arr/logs/struct", body, basic(n.token)); code != 200 {
		t.Fatalf("bare array with Basic: %d %s", code, b)
	}
	if code, _ := n.post("/api/v1/streams/arr/logs/struct", body, basic("root")); code != 401 {
		t.Errorf("Basic with a password instead of a token: %d, want 401", code)
	}
	got := map[string]time.Time{}
	for _, r := range n.query("arr", nil).Records {
		ts, _ := time.Parse(time.RFC3339Nano, r.Timestamp)
		got[r.Fields["message"]] = ts
	}
	want := map[string]string{"a": "2026-01-02T03:04:05Z", "b": "2026-01-02T03:04:05.5Z", "d": "2026-01-02T03:04:07Z"}
	for m, w := range want {
		if wt, _ := time.Parse(time.RFC3339Nano, w); !got[m].Equal(wt) {
			t.Errorf("record %s at %s, want %s", m, got[m], w)
		}
	}
	if time.Since(got["c"]) > time.Minute {
		t.Errorf("a date field that is not a time set the time: %s", got["c"])
	}
	// A named time field, nested.
	if code, b := n.post("/api/v1/streams/named/logs/struct?timestamp_field=event.created", []byte(`[{"event":{"created":"2025-05-05T05:05:05Z"},"timestamp":"nope"}]`), nil); code != 200 {
		t.Fatalf("timestamp_field: %d %s", code, b)
	}
	if r := n.query("named", nil).Records; len(r) != 1 || !strings.HasPrefix(r[0].Timestamp, "2025-05-05T05:05:05") {
		t.Errorf("timestamp_field: %+v", r)
	}
}
