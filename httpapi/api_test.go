package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/httpapi"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/store/storetest"
)

// node is one API over a real store, served on real loopback listeners.
type node struct {
	t      *testing.T
	st     *store.Store
	api    *httpapi.API
	public *httptest.Server
	mgmt   *httptest.Server
	token  string
}

func newNode(t *testing.T) *node {
	t.Helper()
	return newNodeWith(t, nil)
}

// newNodeWith starts a node whose API configuration edit changes.
func newNodeWith(t *testing.T, edit func(*httpapi.Config)) *node {
	t.Helper()
	reg := prometheus.NewRegistry()
	st := storetest.Open(t, func(c *store.Config) { c.Registerer = reg })
	cfg := httpapi.Config{
		Logs: st.Logs, Auth: st.Auth, Registerer: reg, Gatherer: reg, Heartbeat: 50 * time.Millisecond,
		Cluster: staticView{{ID: "n0", Endpoint: "http://127.0.0.1:9113", Status: "alive"}},
		Limits:  httpapi.Limits{MaxBodyBytes: 1 << 20},
		Logger:  slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	api, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api.SetReady(true)
	n := &node{t: t, st: st, api: api, public: httptest.NewServer(api.Public()), mgmt: httptest.NewServer(api.Management(nil))}
	t.Cleanup(func() {
		api.StopIngest()
		n.public.Close()
		n.mgmt.Close()
		st.Close()
	})
	n.token = n.login("root", "root")
	return n
}

type staticView []flowg.Node

func (s staticView) Nodes() []flowg.Node { return s }

func (n *node) login(user, pw string) string {
	n.t.Helper()
	var out struct{ Token string }
	n.call("POST", "/api/v1/auth/login", "", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw), 200, &out)
	return out.Token
}

// do sends a request with n's token and returns status and body.
func (n *node) do(method, path, contentType, body string) (int, string) {
	return n.doAs(n.token, method, path, contentType, body)
}

func (n *node) doAs(token, method, path, contentType, body string) (int, string) {
	n.t.Helper()
	req, _ := http.NewRequest(method, n.public.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// call checks the status and decodes the JSON answer into out.
func (n *node) call(method, path, contentType, body string, want int, out any) {
	n.t.Helper()
	code, b := n.do(method, path, contentType, body)
	if code != want {
		n.t.Fatalf("%s %s = %d %s, want %d", method, path, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			n.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

type page struct {
	Records []struct {
		Timestamp string
		Fields    map[string]string
	}
	NextCursor string `json:"next_cursor"`
}

func (n *node) query(stream string, params url.Values) page {
	n.t.Helper()
	var p page
	n.call("GET", "/api/v1/streams/"+stream+"/logs?"+params.Encode(), "", "", 200, &p)
	return p
}

func TestIngestAndQuery_Success(t *testing.T) {
	n := newNode(t)
	var ing struct{ Ingested int }
	n.call("POST", "/api/v1/streams/app/logs/struct", "application/json", `{"records":[
		{"level":"info","message":"one","timestamp":"2026-01-01T00:00:01.5Z"},
		{"level":"error","message":"two","@timestamp":1767225602,"http":{"status":500,"ok":false,"tags":["a","b"]}},
		{"level":"error","message":"three","timestamp":1767225603000,"gone":null}]}`, 200, &ing)
	if ing.Ingested != 3 {
		t.Fatalf("ingested %d, want 3", ing.Ingested)
	}
	n.call("POST", "/api/v1/streams/app/logs/struct", "application/x-ndjson",
		"{\"level\":\"warn\",\"message\":\"four\",\"timestamp\":\"2026-01-01T00:00:04Z\"}\n\n{\"level\":\"info\",\"message\":\"five\",\"timestamp\":\"2026-01-01T00:00:05Z\"}\n", 200, &ing)
	n.call("POST", "/api/v1/streams/text/logs/text", "text/plain", "first line\r\n\nsecond line\n", 200, &ing)
	if ing.Ingested != 2 {
		t.Fatalf("text ingest took %d lines, want 2", ing.Ingested)
	}

	p := n.query("app", url.Values{"filter": {`level = "error"`}})
	if len(p.Records) != 2 || p.Records[0].Fields["message"] != "three" || p.Records[1].Fields["http.status"] != "500" ||
		p.Records[1].Fields["http.ok"] != "false" || p.Records[1].Fields["http.tags"] != `["a","b"]` {
		t.Fatalf("error records = %+v", p.Records)
	}
	if _, ok := p.Records[0].Fields["gone"]; ok {
		t.Fatal("a null field was stored")
	}
	if p.Records[1].Timestamp != "2026-01-01T00:00:02Z" || p.Records[0].Timestamp != "2026-01-01T00:00:03Z" {
		t.Fatalf("epoch timestamps read as %s and %s", p.Records[1].Timestamp, p.Records[0].Timestamp)
	}
	p = n.query("app", url.Values{"from": {"2026-01-01T00:00:01.5Z"}, "to": {"2026-01-01T00:00:04Z"}, "order": {"asc"}})
	if len(p.Records) != 3 || p.Records[0].Timestamp != "2026-01-01T00:00:01.5Z" {
		t.Fatalf("window query = %+v", p.Records)
	}
	var msgs []string
	params := url.Values{"limit": {"2"}, "filter": {`message ~= "^(one|two|four|five)$" and not level in ["debug"]`}}
	for range 5 {
		p := n.query("app", params)
		for _, r := range p.Records {
			msgs = append(msgs, r.Fields["message"])
		}
		if p.NextCursor == "" {
			break
		}
		params.Set("cursor", p.NextCursor)
	}
	if strings.Join(msgs, ",") != "five,four,two,one" {
		t.Fatalf("paged messages = %v", msgs)
	}
	if p := n.query("text", nil); len(p.Records) != 2 || p.Records[0].Fields["message"] != "second line" {
		t.Fatalf("text records = %+v", p.Records)
	}
}

func TestIngest_Failure(t *testing.T) {
	n := newNode(t)
	long := strings.Repeat("x", flowg.MaxFieldValueLen+1)
	many := "{\"records\":[" + strings.Repeat(`{"a":"b"},`, flowg.MaxBatchRecords) + `{"a":"b"}]}`
	deep := `{"records":[` + strings.Repeat(`{"a":`, 40) + `"x"` + strings.Repeat(`}`, 40) + `]}`
	cases := []struct {
		name, path, ctype, body string
		status                  int
		msg                     string
	}{
		{"bad JSON", "struct", "application/json", `{"records":[{"a":}]}`, 400, "bad JSON body"},
		{"no records", "struct", "application/json", `{"recs":[]}`, 400, `has no \"records\" array`},
		{"records not array", "struct", "application/json", `{"records":{}}`, 400, "must be an array"},
		{"record not object", "struct", "application/json", `{"records":[{"a":"b"},3]}`, 400, "record 1: is a JSON number"},
		{"field too long", "struct", "application/json", `{"records":[{"a":"b"},{"m":"` + long + `"}]}`, 400, `record 1: field \"m\" is 65537 bytes`},
		{"bad timestamp", "struct", "application/json", `{"records":[{"a":"b"},{"timestamp":"yesterday"}]}`, 400, "neither RFC 3339 nor a Unix epoch"},
		{"invalid UTF-8", "struct", "application/json", "{\"records\":[{\"a\":\"\xff\"}]}", 400, "not valid UTF-8"},
		{"too deep", "struct", "application/json", deep, 400, "nest deeper"},
		{"too many records", "struct", "application/json", many, 413, "more than the limit of 10000"},
		{"body too large", "struct", "application/json", `{"records":[{"m":"` + strings.Repeat("x", 1<<20) + `"}]}`, 413, "larger than 1048576 bytes"},
		{"bad NDJSON line", "struct", "application/x-ndjson", "{\"a\":\"b\"}\n{oops}\n", 400, "line 2: bad JSON"},
		{"text line too long", "text", "text/plain", "ok\n" + long, 400, "line 2 is 65537 bytes"},
	}
	for _, c := range cases {
		code, body := n.do("POST", "/api/v1/streams/app/logs/"+c.path, c.ctype, c.body)
		if code != c.status || !strings.Contains(body, c.msg) || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s: %d %.200s, want %d with %q", c.name, code, body, c.status, c.msg)
		}
	}
	code, body := n.do("POST", "/api/v1/streams/bad..%2Fname/logs/struct", "application/json", `{"records":[{"a":"b"}]}`)
	if code != 400 || !strings.Contains(body, "illegal characters") {
		t.Errorf("illegal stream name: %d %s", code, body)
	}
	if names := n.st.Logs.Streams(); len(names) != 0 {
		t.Fatalf("rejected requests created streams %v", names)
	}
}

func TestQuery_Failure(t *testing.T) {
	n := newNode(t)
	n.call("POST", "/api/v1/streams/app/logs/text", "", "x\n", 200, nil)
	cases := []struct {
		stream string
		params url.Values
		status int
		msg    string
	}{
		{"app", url.Values{"filter": {`level = "a" and (`}}, 400, "filter syntax error at column 18"},
		{"app", url.Values{"limit": {"0"}}, 400, "limit"},
		{"app", url.Values{"limit": {"10001"}}, 400, "limit"},
		{"app", url.Values{"from": {"yesterday"}}, 400, "use RFC 3339, a Unix epoch"},
		{"app", url.Values{"from": {"2026-01-02T00:00:00Z"}, "to": {"2026-01-01T00:00:00Z"}}, 400, "from must be before to"},
		{"app", url.Values{"order": {"up"}}, 400, "neither asc nor desc"},
		{"app", url.Values{"cursor": {"!!"}}, 400, "cursor"},
		{"nope", nil, 404, `stream \"nope\": not found`},
	}
	for _, c := range cases {
		code, body := n.do("GET", "/api/v1/streams/"+c.stream+"/logs?"+c.params.Encode(), "", "")
		if code != c.status || !strings.Contains(body, c.msg) {
			t.Errorf("%v: %d %s, want %d with %q", c.params, code, body, c.status, c.msg)
		}
	}
}

func TestAuth_ScopesAndTokens(t *testing.T) {
	n := newNode(t)
	if code, _ := n.doAs("", "GET", "/api/v1/streams", "", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := n.doAs("fgt_nope", "GET", "/api/v1/streams", "", ""); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	if code, body := n.do("POST", "/api/v1/auth/login", "", `{"username":"root","password":"wrong"}`); code != 401 || !strings.Contains(body, "wrong password") {
		t.Fatalf("wrong password: %d %s", code, body)
	}
	n.call("PUT", "/api/v1/roles/reader", "", `{"scopes":["read_streams"]}`, 200, nil)
	if code, body := n.do("PUT", "/api/v1/roles/bad", "", `{"scopes":["fly"]}`); code != 400 || !strings.Contains(body, "unknown scope") {
		t.Fatalf("unknown scope: %d %s", code, body)
	}
	if code, _ := n.do("PUT", "/api/v1/roles/admin", "", `{"scopes":[]}`); code != 403 {
		t.Fatalf("changing admin: %d", code)
	}
	n.call("PUT", "/api/v1/users/alice", "", `{"password":"alice-password","roles":["reader"]}`, 200, nil)
	if code, body := n.do("PUT", "/api/v1/users/bob", "", `{"password":"x","roles":[]}`); code != 400 || !strings.Contains(body, "shorter") {
		t.Fatalf("short password: %d %s", code, body)
	}
	if code, body := n.do("PUT", "/api/v1/users/bob", "", `{"password":"bob-password","roles":["ghost"]}`); code != 400 || !strings.Contains(body, "unknown role") {
		t.Fatalf("unknown role: %d %s", code, body)
	}
	if code, body := n.do("PUT", "/api/v1/users/bob", "", `{"password":"bob-password","extra":1}`); code != 400 || !strings.Contains(body, "unknown field") {
		t.Fatalf("unknown JSON field: %d %s", code, body)
	}
	alice := n.login("alice", "alice-password")
	n.call("POST", "/api/v1/streams/app/logs/text", "", "x\n", 200, nil)
	if code, _ := n.doAs(alice, "GET", "/api/v1/streams/app/logs", "", ""); code != 200 {
		t.Fatalf("reader query: %d", code)
	}
	if code, body := n.doAs(alice, "POST", "/api/v1/streams/app/logs/text", "", "x\n"); code != 403 || !strings.Contains(body, "send_logs") {
		t.Fatalf("reader ingest: %d %s", code, body)
	}
	var tok struct{ Token, ID string }
	code, body := n.doAs(alice, "POST", "/api/v1/tokens", "", `{"name":"ci"}`)
	if code != 201 || json.Unmarshal([]byte(body), &tok) != nil {
		t.Fatalf("create token: %d %s", code, body)
	}
	if code, _ := n.doAs(tok.Token, "GET", "/api/v1/streams", "", ""); code != 200 {
		t.Fatalf("personal token: %d", code)
	}
	if code, body := n.doAs(alice, "GET", "/api/v1/tokens", "", ""); code != 200 || !strings.Contains(body, `"name":"ci"`) || strings.Contains(body, tok.Token) {
		t.Fatalf("list tokens: %d %s", code, body)
	}
	if code, _ := n.doAs(alice, "DELETE", "/api/v1/tokens/"+tok.ID, "", ""); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := n.doAs(tok.Token, "GET", "/api/v1/streams", "", ""); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}
	if code, _ := n.do("DELETE", "/api/v1/users/root", "", ""); code != 409 {
		t.Fatalf("deleting yourself: %d", code)
	}
	n.call("DELETE", "/api/v1/users/alice", "", "", 204, nil)
	if code, _ := n.doAs(alice, "GET", "/api/v1/streams", "", ""); code != 401 {
		t.Fatalf("token of a deleted user: %d", code)
	}
}

func TestStreams_SettingsAndPurge(t *testing.T) {
	n := newNode(t)
	n.call("POST", "/api/v1/streams/app/logs/struct", "", `{"records":[{"level":"info","host":"a"},{"level":"warn","host":"b"}]}`, 200, nil)
	var s struct {
		Name             string
		RetentionSeconds int64    `json:"retention_seconds"`
		IndexedFields    []string `json:"indexed_fields"`
		Usage            struct{ Records int64 }
	}
	n.call("GET", "/api/v1/streams/app", "", "", 200, &s)
	if s.Usage.Records != 2 || len(s.IndexedFields) != 1 || s.IndexedFields[0] != "level" {
		t.Fatalf("stream = %+v", s)
	}
	n.call("PUT", "/api/v1/streams/app", "", `{"retention_seconds":3600,"indexed_fields":["host","level"]}`, 200, &s)
	if s.RetentionSeconds != 3600 || len(s.IndexedFields) != 2 {
		t.Fatalf("after PUT: %+v", s)
	}
	if p := n.query("app", url.Values{"filter": {`host = "b"`}}); len(p.Records) != 1 {
		t.Fatalf("query on the new index: %+v", p)
	}
	if code, body := n.do("PUT", "/api/v1/streams/app", "", `{"retention_seconds":-1}`); code != 400 {
		t.Fatalf("negative retention: %d %s", code, body)
	}
	var list struct{ Streams []struct{ Name string } }
	n.call("GET", "/api/v1/streams", "", "", 200, &list)
	if len(list.Streams) != 1 || list.Streams[0].Name != "app" {
		t.Fatalf("streams = %+v", list)
	}
	n.call("DELETE", "/api/v1/streams/app", "", "", 204, nil)
	n.call("GET", "/api/v1/streams/app", "", "", 404, nil)
	n.call("DELETE", "/api/v1/streams/app", "", "", 404, nil)
}

func TestWatch(t *testing.T) {
	n := newNode(t)
	n.call("POST", "/api/v1/streams/app/logs/text", "", "before\n", 200, nil)
	req, _ := http.NewRequest("GET", n.public.URL+"/api/v1/streams/app/logs/watch?filter="+url.QueryEscape(`level = "error"`), nil)
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	n.call("POST", "/api/v1/streams/app/logs/struct", "", `{"records":[{"level":"info","message":"skip"},{"level":"error","message":"tail me"}]}`, 200, nil)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(10 * time.Second)
	var sawHeartbeat bool
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("watch ended before the record came")
			}
			sawHeartbeat = sawHeartbeat || l == ": heartbeat"
			if strings.HasPrefix(l, "data: ") {
				if !strings.Contains(l, `"message":"tail me"`) {
					t.Fatalf("tail sent %s", l)
				}
				n.api.StopIngest() // shutdown ends the tail
				for range lines {
				}
				return
			}
		case <-deadline:
			t.Fatalf("no record on the tail (heartbeat seen: %v)", sawHeartbeat)
		}
	}
}

func TestManagement(t *testing.T) {
	n := newNode(t)
	n.call("POST", "/api/v1/streams/app/logs/text", "", "x\n", 200, nil)
	get := func(path string) (int, string) {
		resp, err := http.Get(n.mgmt.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/health"); code != 200 {
		t.Fatalf("/health = %d", code)
	}
	if code, _ := get("/ready"); code != 200 {
		t.Fatalf("/ready = %d", code)
	}
	code, body := get("/metrics")
	for _, m := range []string{"flowg_ingest_records_total 1", `flowg_stream_records{stream="app"} 1`,
		`flowg_http_requests_total{code="200",route="/api/v1/streams/{stream}/logs/text",server="public"} 1`,
		"flowg_store_query_seconds", "flowg_store_lsm_bytes"} {
		if code != 200 || !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	if code, body := get("/cluster/nodes"); code != 200 || !strings.Contains(body, `"node-id":"n0"`) {
		t.Fatalf("/cluster/nodes = %d %s", code, body)
	}
	n.api.StopIngest()
	if code, _ := get("/ready"); code != 503 {
		t.Fatalf("/ready while stopping = %d", code)
	}
	if code, _ := n.do("POST", "/api/v1/streams/app/logs/text", "", "x\n"); code != 503 {
		t.Fatalf("ingest while stopping = %d", code)
	}
}
