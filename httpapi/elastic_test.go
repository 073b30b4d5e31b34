package httpapi_test

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"
)

// TestElastic_GoClientBulkIndexer sends documents with the Elastic Go
// client's bulk indexer (Basic auth with a token as the password, as a
// shipper configured with a user and password does): the client's product
// check passes, each index becomes a stream, @timestamp the time, and a
// document that is not JSON is reported as a failed item while the others
// are stored.
func TestElastic_GoClientBulkIndexer(t *testing.T) {
	n := newNode(t)
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{n.public.URL + "/elasticsearch"}, Username: "shipper", Password: n.token,
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := es.Info()
	if err != nil || info.IsError() {
		t.Fatalf("handshake: %v %v", info, err)
	}
	info.Body.Close()
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "app-logs", FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed atomic.Int64
	add := func(index, doc string) {
		err := bi.Add(context.Background(), esutil.BulkIndexerItem{Action: "index", Index: index, Body: bytes.NewReader([]byte(doc)),
			OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) { ok.Add(1) },
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				failed.Add(1)
				if !strings.Contains(res.Error.Reason, "line") {
					t.Errorf("failure reason %q", res.Error.Reason)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		add("", `{"@timestamp":"2026-12-02T08:00:00Z","message":"doc","n":`+string(rune('0'+i%10))+`,"http":{"status":200}}`)
	}
	add("audit-2026.12.02", `{"user":"alice","action":"login"}`)
	add("", `{not json`)
	if err := bi.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 101 || failed.Load() != 1 {
		t.Fatalf("%d indexed, %d failed; want 101 and 1", ok.Load(), failed.Load())
	}
	recs := n.query("app-logs", nil).Records
	if len(recs) != 100 || recs[0].Fields["http.status"] != "200" || !strings.HasPrefix(recs[0].Timestamp, "2026-12-02T08:00:00") {
		t.Fatalf("app-logs: %d records, first %+v", len(recs), recs[0])
	}
	if r := n.query("audit-2026.12.02", nil).Records; len(r) != 1 || r[0].Fields["user"] != "alice" {
		t.Fatalf("audit: %+v", r)
	}
	// Without credentials: 401, with the product header the client checks.
	anon, _ := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{n.public.URL + "/elasticsearch"}})
	res, err := anon.Bulk(strings.NewReader("{\"index\":{}}\n{\"a\":\"b\"}\n"))
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("anonymous bulk: %v %v", res, err)
	}
	res.Body.Close()
}
