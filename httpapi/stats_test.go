package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/httpapi"
)

type statsAnswer struct {
	Columns []string
	Step    string
	Rows    []struct {
		Time   string
		By     map[string]string
		Values map[string]*float64
	}
	Records, Scanned int64
	Approximate      []string
}

func (n *node) stats(stream string, params url.Values) statsAnswer {
	n.t.Helper()
	var a statsAnswer
	n.call("GET", "/api/v1/streams/"+stream+"/stats?"+params.Encode(), "", "", 200, &a)
	return a
}

// ingestServices stores 60 records, one a minute from 10:00: service
// s<i%3>, level error for every fifth, latency i ms, host h<i%4>.
func ingestServices(n *node) {
	var recs []string
	for i := range 60 {
		level := "info"
		if i%5 == 0 {
			level = "error"
		}
		recs = append(recs, fmt.Sprintf(`{"timestamp":"2026-12-01T10:%02d:30Z","service":"s%d","level":%q,"latency":%d,"host":"h%d","message":"request %d done"}`,
			i, i%3, level, i, i%4, i))
	}
	n.call("POST", "/api/v1/streams/app/logs/struct", "application/json", `{"records":[`+strings.Join(recs, ",")+`]}`, 200, nil)
}

func TestStats_Questions(t *testing.T) {
	n := newNode(t)
	ingestServices(n)

	// Errors per service: i%5==0 and i%3==s: 12 errors, 4 per service.
	a := n.stats("app", url.Values{"filter": {`level = "error"`}, "by": {"service"}})
	if a.Records != 12 || len(a.Rows) != 3 || a.Columns[0] != "count()" {
		t.Fatalf("errors per service: %+v", a)
	}
	for _, r := range a.Rows {
		if *r.Values["count()"] != 4 {
			t.Errorf("service %s: %v errors, want 4", r.By["service"], *r.Values["count()"])
		}
	}

	// Numeric functions over latency 0..59, with a name.
	a = n.stats("app", url.Values{"stats": {"min(latency), max(latency), sum(latency), avg(latency), p50(latency) as median, count_distinct(host), count(nothing)"}})
	want := map[string]float64{"min(latency)": 0, "max(latency)": 59, "sum(latency)": 1770, "avg(latency)": 29.5, "count_distinct(host)": 4, "count(nothing)": 0}
	for k, v := range want {
		if got := a.Rows[0].Values[k]; got == nil || *got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if m := *a.Rows[0].Values["median"]; m < 29*0.995 || m > 29*1.005 {
		t.Errorf("median = %v, want 29 within 0.5%%", m)
	}

	// A histogram of 10-minute buckets, and top 2 hosts per bucket.
	a = n.stats("app", url.Values{"step": {"10m"}, "from": {"2026-12-01T10:00:00Z"}, "to": {"2026-12-01T11:00:00Z"}})
	if a.Step != "10m" || len(a.Rows) != 6 || a.Rows[0].Time != "2026-12-01T10:00:00Z" || *a.Rows[5].Values["count()"] != 10 {
		t.Errorf("histogram: %+v", a)
	}
	a = n.stats("app", url.Values{"step": {"auto"}, "from": {"2026-12-01T10:00:00Z"}, "to": {"2026-12-01T11:00:00Z"}, "by": {"host"}, "top": {"2"}})
	if a.Step != "30s" || len(a.Rows) != 60 {
		t.Errorf("auto step over an hour: step %s, %d rows", a.Step, len(a.Rows))
	}
	a = n.stats("app", url.Values{"by": {"host"}, "top": {"1"}, "stats": {"sum(latency)"}})
	if len(a.Rows) != 1 || a.Rows[0].By["host"] != "h3" { // 3+7+...+59 is the largest sum
		t.Errorf("top host by latency: %+v", a.Rows)
	}

	// Words, phrases and case.
	if a := n.stats("app", url.Values{"filter": {`message has i"REQUEST 7"`}}); *a.Rows[0].Values["count()"] != 1 {
		t.Errorf("phrase: %+v", a.Rows)
	}
	// A value that is not a number is skipped; no number at all is null.
	if a := n.stats("app", url.Values{"stats": {"avg(service)"}}); a.Rows[0].Values["avg(service)"] != nil {
		t.Errorf("avg of text = %v, want null", *a.Rows[0].Values["avg(service)"])
	}
	// An empty window answers no rows.
	if a := n.stats("app", url.Values{"from": {"2027-01-01T00:00:00Z"}}); len(a.Rows) != 0 || a.Records != 0 {
		t.Errorf("empty window: %+v", a)
	}
}

// TestStats_MemoryBounded: records with large unique values, grouped by
// them or tallied, cost the node a bounded memory: a 422 for the question
// that would hold more, values past 1 KiB left out of the sidebar's.
func TestStats_MemoryBounded(t *testing.T) {
	n := newNodeWith(t, func(c *httpapi.Config) { c.Limits.MaxStatsBytes = 1 << 20 })
	blob := strings.Repeat("b", 60<<10)
	for i := range 5 {
		var recs []string
		for j := range 10 {
			recs = append(recs, fmt.Sprintf(`{"blob":"%s%d-%d","n":"%d"}`, blob, i, j, j))
		}
		n.call("POST", "/api/v1/streams/big/logs/struct", "application/json", `{"records":[`+strings.Join(recs, ",")+`]}`, 200, nil)
	}
	code, body := n.do("GET", "/api/v1/streams/big/stats?by=blob", "", "")
	if code != 422 || !strings.Contains(body, "would hold more than") {
		t.Errorf("grouped by 60 KiB values: %d %.200s", code, body)
	}
	if code, body := n.do("GET", "/api/v1/streams/big/stats?stats=count_distinct(blob)", "", ""); code != 200 || !strings.Contains(body, `"approximate":["count_distinct(blob)"]`) {
		t.Errorf("distinct 60 KiB values: %d %.300s", code, body)
	}
	var f struct {
		Fields []struct {
			Name            string
			Distinct        int
			DistinctAtLeast bool `json:"distinct_at_least"`
		}
	}
	n.call("GET", "/api/v1/streams/big/fields", "", "", 200, &f)
	for _, fl := range f.Fields {
		if fl.Name == "blob" && (fl.Distinct != 0 || !fl.DistinctAtLeast) {
			t.Errorf("blob tallied: %+v", fl)
		}
	}
}

type behindOne struct{}

func (behindOne) Lag() []flowg.OriginLag {
	return []flowg.OriginLag{{Origin: "n1@x", NodeID: "n1", Records: 7, Seconds: 2}}
}

// TestStats_SaysWhatItIsBehind: like a page, an aggregate names the
// origins whose latest records this node lacks.
func TestStats_SaysWhatItIsBehind(t *testing.T) {
	n := newNodeWith(t, func(c *httpapi.Config) { c.Replication = behindOne{} })
	ingestServices(n)
	for _, path := range []string{"/api/v1/streams/app/stats", "/api/v1/streams/app/fields"} {
		var out struct {
			Behind []struct {
				NodeID  string `json:"node_id"`
				Records int
			}
		}
		n.call("GET", path, "", "", 200, &out)
		if len(out.Behind) != 1 || out.Behind[0].NodeID != "n1" || out.Behind[0].Records != 7 {
			t.Errorf("%s: behind %+v", path, out.Behind)
		}
	}
}

func TestStats_Fields(t *testing.T) {
	n := newNode(t)
	ingestServices(n)
	var out struct {
		Records int64
		Fields  []struct {
			Name     string
			Records  int64
			Distinct int
			Top      []struct {
				Value string
				Count int64
			}
		}
	}
	n.call("GET", "/api/v1/streams/app/fields?top=2&filter="+url.QueryEscape(`service = "s0"`), "", "", 200, &out)
	if out.Records != 20 {
		t.Fatalf("records %d, want 20", out.Records)
	}
	var names []string
	for _, f := range out.Fields {
		names = append(names, f.Name)
		if f.Name == "level" && (f.Distinct != 2 || f.Top[0].Value != "info" || f.Top[0].Count != 16 || f.Top[1].Count != 4) {
			t.Errorf("level: %+v", f)
		}
	}
	if got := strings.Join(names, " "); got != "host latency level message service timestamp" && got != "host latency level message service" {
		t.Errorf("fields %s", got)
	}
}

func TestStats_Refusals(t *testing.T) {
	n := newNodeWith(t, func(c *httpapi.Config) { c.Limits.MaxStatsGroups, c.Limits.MaxStatsScan = 5, 50 })
	ingestServices(n)
	for _, tc := range []struct {
		query string
		code  int
		msg   string
	}{
		{"stat=count()", 400, `unknown query parameter "stat": this call takes from, to, filter, stats, by, step, top`},
		{"stats=" + url.QueryEscape("count(), p99(latency"), 400, "stats syntax error at column 21: expected ')', found the end"},
		{"stats=mean(x)", 400, `stats syntax error at column 1: unknown function "mean"`},
		{"by=" + url.QueryEscape("a,,b"), 400, "by syntax error at column 3"},
		{"filter=" + url.QueryEscape(`latency >`), 400, "filter syntax error at column 10"},
		{"step=0", 400, `step="0" is not auto or a duration`},
		{"step=auto", 400, "step=auto needs from"},
		{"top=0", 400, `top="0" is not a whole number from 1 to 5`},
		{"by=host&step=1m&from=2026-12-01T10:00:00Z", 422, "over a limit: more than 5 groups"},
		{"from=2026-12-01T09:00:00Z", 422, "the question reads more than 50 records"},
	} {
		code, body := n.do("GET", "/api/v1/streams/app/stats?"+tc.query, "", "")
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		if code != tc.code || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.query, code, body, tc.code, tc.msg)
		}
	}
	if code, body := n.do("GET", "/api/v1/streams/nope/stats", "", ""); code != 404 {
		t.Errorf("unknown stream: %d %s", code, body)
	}
	if code, body := n.do("GET", "/api/v1/streams/app/fields?top=101", "", ""); code != 400 || !strings.Contains(body, "from 0 to 100") {
		t.Errorf("fields top=101: %d %s", code, body)
	}
	if code, body := n.do("GET", "/api/v1/streams/app/fields?limit=0", "", ""); code != 400 || !strings.Contains(body, "from 1 to 50") {
		t.Errorf("fields limit=0: %d %s", code, body)
	}
	// The newest 10 only: latency 50..59.
	var sample struct {
		Records int64
		Limited bool
		Fields  []struct {
			Name     string
			Distinct int
		}
	}
	n.call("GET", "/api/v1/streams/app/fields?limit=10", "", "", 200, &sample)
	if sample.Records != 10 || !sample.Limited {
		t.Errorf("fields limit=10: %+v", sample)
	}
}
