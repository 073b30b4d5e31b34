package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestE2E_StatsOnEveryNode: records ingested on each of three nodes are
// counted, grouped and ranked alike by every node once replicated.
func TestE2E_StatsOnEveryNode(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	nodes := threeNodes(t, t.TempDir())
	tok := make([]string, 3)
	now := time.Now().UTC()
	for i, n := range nodes {
		tok[i] = n.login("root", "root")
		var recs []string
		for j := range 100 {
			level := "info"
			if j%4 == 0 {
				level = "error"
			}
			recs = append(recs, fmt.Sprintf(`{"timestamp":%q,"service":"svc-%d","host":"node%d-h%d","level":%q,"latency":%d,"message":"GET /item/%d answered"}`,
				now.Add(-time.Duration(j)*time.Second).Format(time.RFC3339Nano), j%5, i, j%3, level, j*10+i, j))
		}
		if code, b := n.request(tok[i], "POST", "/api/v1/streams/app/logs/struct", `{"records":[`+strings.Join(recs, ",")+`]}`); code != 200 {
			t.Fatalf("ingest on n%d: %d %s", i, code, b)
		}
	}
	ask := func(i int, params url.Values) []byte {
		code, b := nodes[i].request(tok[i], "GET", "/api/v1/streams/app/stats?"+params.Encode(), "")
		if code != 200 {
			t.Fatalf("stats on n%d: %d %s", i, code, b)
		}
		return b
	}
	for i := range nodes {
		eventually(t, 10*time.Second, fmt.Sprintf("n%d counts the 300 records", i), func() bool {
			var a struct{ Records int }
			json.Unmarshal(ask(i, url.Values{"from": {"-1h"}}), &a)
			return a.Records == 300
		})
	}
	questions := []url.Values{
		{"filter": {`level = "error"`}, "by": {"service"}, "from": {"now-1h"}},
		{"by": {"service"}, "stats": {"p99(latency), avg(latency), max(latency), count_distinct(host)"}},
		{"by": {"host"}, "top": {"3"}},
		{"step": {"auto"}, "from": {"-10m"}, "to": {"now"}, "filter": {`message has "answered" and latency >= 500`}},
	}
	for _, q := range questions {
		// Every node gives the same rows; the counts and scans may not
		// differ either, the data being the same.
		first := ask(0, q)
		rows := func(b []byte) string {
			var a struct{ Rows json.RawMessage }
			json.Unmarshal(b, &a)
			return string(a.Rows)
		}
		for i := 1; i < 3; i++ {
			if got := ask(i, q); rows(got) != rows(first) {
				t.Errorf("%v: n%d answers %s, n0 %s", q, i, got, first)
			}
		}
		t.Logf("%v: %s", q, bytes.TrimSpace(first))
	}
	var errs struct {
		Rows []struct {
			By     map[string]string
			Values map[string]float64
		}
	}
	json.Unmarshal(ask(2, questions[0]), &errs)
	if len(errs.Rows) != 5 || errs.Rows[0].Values["count()"] != 15 { // j%4==0 and j%5==s: 5 per node
		t.Errorf("errors per service: %+v", errs.Rows)
	}
	code, b := nodes[1].request(tok[1], "GET", "/api/v1/streams/app/fields?top=3", "")
	if code != 200 || !strings.Contains(string(b), `"name":"service","records":300,"distinct":5`) {
		t.Errorf("fields on n1: %d %s", code, b)
	}
}
